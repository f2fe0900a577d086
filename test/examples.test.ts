/** Every example is valid, and together they show every trigger kind and every stage. */
import { describe, expect, it } from "vitest";
import { TRIGGER_KINDS } from "../src/api/optask.ts";
import { formatPath, validateObject } from "../src/api/validate.ts";
import { exampleDocuments } from "./support/manifests.ts";

const docs = exampleDocuments();

describe("examples/", () => {
  it.each(docs.map(({ file, doc }) => [`${file} ${String((doc["metadata"] as { name?: string }).name)}`, doc] as const))(
    "%s is valid",
    (_name, doc) => {
      const result = validateObject(doc);
      expect(result.problems.map((p) => `${formatPath(p.path)}: ${p.message}`)).toEqual([]);
    },
  );

  const specs = docs.filter(({ doc }) => doc["kind"] === "OpTask").map(({ doc }) => doc["spec"] as Record<string, any>);

  it("use every trigger kind", () => {
    const used = new Set(specs.flatMap((s) => Object.keys(s["trigger"])));
    expect([...used].sort()).toEqual([...TRIGGER_KINDS].sort());
  });

  it("use every stage: configure inputs, publish outputs and notifications", () => {
    expect(specs.some((s) => s["stages"]?.configure?.inputs?.length > 0)).toBe(true);
    expect(specs.some((s) => s["stages"]?.publish?.outputs?.length > 0)).toBe(true);
    expect(specs.some((s) => s["stages"]?.publish?.notify?.started && s["stages"]?.publish?.notify?.finished)).toBe(true);
    expect(specs.some((s) => s["stages"]?.publish?.outputs?.some((o: { to: string }) => o.to.startsWith("https://")))).toBe(true);
  });

  it("include a Slurm-backed task next to a simulation's job", () => {
    expect(specs.some((s) => s["backend"] === "slurm" && s["target"]?.slurmJob !== undefined)).toBe(true);
  });
});
