/**
 * The CRDs' CEL rules refuse exactly what zod refuses. Each manifest below breaks rules
 * that the API server checks with CEL (after the structural schema has passed); the
 * CEL interpreter and zod must fail the same fields, with the same messages.
 */
import { describe, expect, it } from "vitest";
import { openApiSchema } from "../../src/api/crd.ts";
import { kindDefinition } from "../../src/api/kinds.ts";
import { fieldPathToKeys } from "../../src/api/rules.ts";
import { formatPath, validateObject } from "../../src/api/validate.ts";
import { celVerdicts } from "../support/cel.ts";
import { exampleDocuments, task, TASK_CASES } from "../support/manifests.ts";

/** Rules the generator adds to quantities and durations; zod words their messages differently. */
const GENERATED = new Set(["type(self) != int || self >= 0", "duration(self) > duration('0s')"]);

function compare(manifest: Record<string, any>) {
  const def = kindDefinition(String(manifest["kind"]));
  if (def === undefined) throw new Error("not an odop kind");
  const verdicts = celVerdicts(openApiSchema(def), manifest);
  const cel = verdicts
    .filter((v) => !v.ok)
    .map((v) => ({ path: formatPath([...v.path, ...fieldPathToKeys(v.fieldPath)]), message: v.message, rule: v.rule }));
  const zod = validateObject(manifest).problems.map((p) => ({ path: formatPath(p.path), message: p.message }));
  return { verdicts, cel, zod };
}


describe("CEL rules agree with zod", () => {
  it.each(TASK_CASES)("%s", (_name, edit) => {
    const { verdicts, cel, zod } = compare(task(edit));
    expect(verdicts.length).toBeGreaterThan(0);
    expect(new Set(cel.map((c) => c.path))).toEqual(new Set(zod.map((z) => z.path)));
    for (const failure of cel) {
      if (GENERATED.has(failure.rule)) continue;
      expect(zod.filter((z) => z.path === failure.path).map((z) => z.message)).toContain(failure.message);
    }
  });

  it.each(exampleDocuments().map(({ file, doc }) => [file, doc] as const))("%s passes every rule", (_file, doc) => {
    const { verdicts, cel, zod } = compare(doc);
    expect(verdicts.length).toBeGreaterThan(0);
    expect(cel).toEqual([]);
    expect(zod).toEqual([]);
  });
});
