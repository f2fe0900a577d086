/** Manifests for tests: the examples, and a valid OpTask to mutate. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export const EXAMPLES_DIR = join(import.meta.dirname, "../../examples");

/** Every document of every example file (recursively), with its file. */
export function exampleDocuments(): { file: string; doc: Record<string, unknown> }[] {
  const files = readdirSync(EXAMPLES_DIR, { recursive: true, encoding: "utf8" }).filter((f) => /\.ya?ml$/.test(f));
  return files.sort().flatMap((file) =>
    parseAllDocuments(readFileSync(join(EXAMPLES_DIR, file), "utf8"))
      .filter((d) => d.contents !== null)
      .map((d) => ({ file, doc: d.toJS() as Record<string, unknown> })),
  );
}

/** A small valid OpTask; tests derive invalid ones from it. */
export function baseTask(): Record<string, any> {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name: "base", namespace: "default" },
    spec: {
      trigger: { manual: {} },
      run: { command: ["true"] },
    },
  };
}

/** A copy of the base task with `edit` applied to its spec. */
export function task(edit: (spec: Record<string, any>, task: Record<string, any>) => void): Record<string, any> {
  const t = baseTask();
  edit(t["spec"], t);
  return t;
}

/**
 * OpTasks derived from the base task, most of them invalid: the CEL rules and zod must
 * refuse the same fields (test/unit/crd-cel.test.ts), and so must the real API server
 * (test/cluster/crds.test.ts). A few are valid on purpose (units that compare equal,
 * every source scheme).
 */
export const TASK_CASES: [string, (s: any, t: any) => void][] = [
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
