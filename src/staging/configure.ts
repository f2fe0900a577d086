/**
 * The configure stage: copy each input into the execution's workspace before the run.
 * Inputs are checked first (locations, destinations), then copied in order; the first
 * input that fails stops the stage, and its error names it (index and from).
 */
import { mkdir } from "node:fs/promises";
import { dirname, posix } from "node:path";
import type { z } from "zod";
import type { Input } from "../api/optask.ts";
import { copyPath, type CopyStats } from "./copy.ts";
import { stageEach } from "./each.ts";
import { toStagingError } from "./errors.ts";
import { httpOptionsOf, signalOf, type StageItemResult, type StageOptions } from "./events.ts";
import { download } from "./http.ts";
import { namesFolder, parseLocation, redactLocation, s3Unsupported, urlBaseName, type ParsedLocation } from "./location.ts";
import { resolveInWorkspace } from "./workspace.ts";

/** An input as written in an OpTask (optional may be left out). */
export type StageInput = z.input<typeof Input>;

type InputPlan = {
  readonly index: number;
  readonly label: string;
  readonly shownFrom: string;
  readonly location: ParsedLocation;
  /** Workspace-relative destination; "to: dir/" already has the source's base name added. */
  readonly to: string;
  readonly optional: boolean;
};

/**
 * Copies `inputs` into `workspace` (which must exist). `from` is an absolute path, a
 * file:/// URL (a file or a folder, copied recursively) or an http(s):// URL (GET);
 * `to` is relative to the workspace, and ending in '/' it names a folder that receives
 * the source under its own base name. An optional input whose source is missing (no
 * such file, HTTP 404 or 410) is skipped and reported; anything else that fails throws
 * a StagingError naming the input.
 */
export async function stageIn(workspace: string, inputs: readonly StageInput[], options: StageOptions = {}): Promise<StageItemResult[]> {
  const plans = inputs.map((input, index) => planInput(input, index));
  return stageEach(workspace, plans, (plan) => plan.to, (plan) => stageInput(workspace, plan, options), options);
}

function planInput(input: StageInput, index: number): InputPlan {
  const shownFrom = redactLocation(input.from);
  const label = `input ${index} (from ${shownFrom})`;
  try {
    const location = parseLocation(input.from);
    if (location.kind === "s3") throw s3Unsupported(input.from);
    const to = namesFolder(input.to) ? posix.join(input.to, baseNameOf(location)) : input.to;
    return { index, label, shownFrom, location, to, optional: input.optional ?? false };
  } catch (error) {
    throw toStagingError(error, label).within(label);
  }
}

function baseNameOf(location: Exclude<ParsedLocation, { kind: "s3" }>): string {
  return location.kind === "file" ? posix.basename(location.path) : urlBaseName(location.url);
}

async function stageInput(workspace: string, plan: InputPlan, options: StageOptions): Promise<StageItemResult> {
  try {
    // Resolved again right before the copy: an earlier input may have changed the tree.
    const dest = await resolveInWorkspace(workspace, plan.to);
    const stats = await copyIn(plan.location, dest, options);
    return { type: "staged", direction: "in", index: plan.index, from: plan.shownFrom, to: plan.to, ...stats };
  } catch (thrown) {
    const error = toStagingError(thrown, plan.label, options.signal);
    if (error.reason === "NotFound" && plan.optional) {
      return { type: "skipped", direction: "in", index: plan.index, from: plan.shownFrom, to: plan.to, note: "optional input not found" };
    }
    throw error.within(plan.label);
  }
}

async function copyIn(location: ParsedLocation, dest: string, options: StageOptions): Promise<CopyStats> {
  switch (location.kind) {
    case "file":
      return copyPath(location.path, dest, { confineDestination: true, ...signalOf(options) });
    case "http": {
      await mkdir(dirname(dest), { recursive: true });
      const { bytes } = await download(location.url, dest, httpOptionsOf(options));
      return { kind: "file", files: 1, bytes };
    }
    case "s3":
      throw s3Unsupported(location.url);
  }
}
