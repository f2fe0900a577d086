/** The loop both stages share: check every workspace path first, then copy item by item. */
import { toStagingError } from "./errors.ts";
import type { StageItemResult, StageOptions } from "./events.ts";
import { resolveInWorkspace } from "./workspace.ts";

/**
 * Refuses a bad workspace path before anything is copied (not after half the items),
 * then stages each item in order, reporting each result as it happens.
 */
export async function stageEach<P extends { readonly label: string }>(
  workspace: string,
  plans: readonly P[],
  workspacePath: (plan: P) => string,
  stage: (plan: P) => Promise<StageItemResult>,
  options: StageOptions,
): Promise<StageItemResult[]> {
  for (const plan of plans) {
    await resolveInWorkspace(workspace, workspacePath(plan)).catch((error: unknown) => {
      throw toStagingError(error, plan.label).within(plan.label);
    });
  }
  const results: StageItemResult[] = [];
  for (const plan of plans) {
    const result = await stage(plan);
    options.report?.(result);
    results.push(result);
  }
  return results;
}
