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
import { exampleDocuments, task } from "../support/manifests.ts";

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

const cases: [string, (s: any, t: any) => void][] = [
  ["cpu min above max", (s) => (s.requirements = { cpu: { min: 4, max: 2 } })],
  ["cpu min equal to max across units", (s) => (s.requirements = { cpu: { min: "1000m", max: 1 } })],
  ["cpu min just above max", (s) => (s.requirements = { cpu: { min: "1001m", max: 1 } })],
  ["memory Gi above G", (s) => (s.requirements = { memory: { min: "2Gi", max: "2G" } })],
  ["memory Mi equal to Gi", (s) => (s.requirements = { memory: { min: "1024Mi", max: "1Gi" } })],
  ["threads min above max", (s) => (s.requirements = { threads: { min: 3, max: 2 } })],
  ["negative cpu", (s) => (s.requirements = { cpu: { min: -1 } })],
  ["zero time limit", (s) => (s.requirements = { time: "0s" })],
  ["no trigger kind", (s) => (s.trigger = {})],
  ["two trigger kinds", (s) => (s.trigger = { manual: {}, idle: {} })],
  ["every and cron", (s) => (s.trigger = { schedule: { every: "5m", cron: "* * * * *" } })],
  ["neither every nor cron", (s) => (s.trigger = { schedule: {} })],
  ["cron with two fields", (s) => (s.trigger = { schedule: { cron: "* *" } })],
  ["cron nickname", (s) => (s.trigger = { schedule: { cron: "@daily" } })],
  ["timeZone without cron", (s) => (s.trigger = { schedule: { every: "5m", timeZone: "UTC" } })],
  ["slurm job id and name", (s) => { s.target = { slurmJob: { id: 1, name: "x" } }; s.run = { script: "x" }; }],
  ["process without selector", (s) => (s.target = { process: {} })],
  ["env value and secret", (s) => (s.run.env = [{ name: "A", value: "1", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }])],
  ["nothing to run", (s) => (s.run = {})],
  ["command and script", (s) => (s.run = { command: ["x"], script: "y" })],
  ["script and module", (s) => (s.run = { script: "x", module: "pkg.ops", function: "f" })],
  ["module without function", (s) => (s.run = { module: "pkg.ops" })],
  ["function without module", (s) => (s.run = { command: ["x"], function: "f" })],
  ["module and function", (s) => (s.run = { module: "pkg.ops", function: "f" })],
  ["parent segment", (s) => (s.stages = { configure: { inputs: [{ from: "/d/x", to: "a/../../etc" }] } })],
  ["dots inside a name", (s) => (s.stages = { configure: { inputs: [{ from: "/d/x", to: "a/..b/c.." }] } })],
  ["absolute destination", (s) => (s.stages = { configure: { inputs: [{ from: "/d/x", to: "/etc/x" }] } })],
  ["ftp source", (s) => (s.stages = { configure: { inputs: [{ from: "ftp://h/x", to: "x" }] } })],
  ["relative source", (s) => (s.stages = { configure: { inputs: [{ from: "data/x", to: "x" }] } })],
  ["http, s3 and file sources", (s) => (s.stages = { configure: { inputs: [{ from: "https://h:8080/x?y=1", to: "a" }, { from: "s3://my-bucket/k", to: "b" }, { from: "file:///d/x", to: "c" }] } })],
  ["s3 bucket with upper case", (s) => (s.stages = { publish: { outputs: [{ from: "x", to: "s3://Bucket/k" }] } })],
  ["s3 notification", (s) => (s.stages = { publish: { notify: { finished: "s3://b/k" } } })],
  ["slurm without script", (s) => (s.backend = "slurm")],
  ["slurm job target without script", (s) => (s.target = { slurmJob: { id: 42 } })],
  ["slurm job target on local", (s) => { s.target = { slurmJob: { name: "sim" } }; s.backend = "local"; }],
  ["pods without image", (s) => (s.backend = "kubernetes")],
  ["local with image only", (s) => { s.backend = "local"; s.run = { image: "busybox" }; }],
  ["name too long", (_s, t) => (t.metadata.name = "x".repeat(51))],
  ["name with upper case", (_s, t) => (t.metadata.name = "Snap")],
];

describe("CEL rules agree with zod", () => {
  it.each(cases)("%s", (_name, edit) => {
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
