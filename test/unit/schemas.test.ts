import { describe, expect, it } from "vitest";
import type { OpTask } from "../../src/api/optask.ts";
import { formatPath, validateObject } from "../../src/api/validate.ts";
import { baseTask, task } from "../support/manifests.ts";

/** The problems of a manifest as "path: message" lines. */
function problems(manifest: unknown): string[] {
  const result = validateObject(manifest);
  return result.problems.map((p) => `${formatPath(p.path)}: ${p.message}`);
}

describe("OpTask", () => {
  it("accepts a minimal task and fills in defaults", () => {
    const result = validateObject(baseTask());
    expect(result.problems).toEqual([]);
    const spec = (result.ok ? (result.object as OpTask) : undefined)?.spec;
    expect(spec?.policy).toEqual({ priority: 0, onContention: "pause", concurrency: 1 });
    expect(spec?.suspend).toBe(false);
  });

  it("fills in trigger defaults", () => {
    const result = validateObject(task((s) => (s.trigger = { fileIn: { path: "/data" } })));
    expect(result.ok && (result.object as OpTask).spec.trigger.fileIn).toEqual({ path: "/data", pattern: "*", batchSize: 1 });
  });

  // Each row: an edit of the valid base task, and the problems it must produce (exactly).
  it.each<[string, (s: any, t: any) => void, string[]]>([
    ["cpu min above max", (s) => (s.requirements = { cpu: { min: 4, max: 2 } }), ["spec.requirements.cpu.min: min must not exceed max: lower min or raise max"]],
    ["cpu compared exactly across units", (s) => (s.requirements = { cpu: { min: "1001m", max: 1 } }), ["spec.requirements.cpu.min: min must not exceed max: lower min or raise max"]],
    ["memory Gi above G", (s) => (s.requirements = { memory: { min: "2Gi", max: "2G" } }), ["spec.requirements.memory.min: min must not exceed max: lower min or raise max"]],
    ["threads min above max", (s) => (s.requirements = { threads: { min: 3, max: 2 } }), ["spec.requirements.threads.min: min must not exceed max: lower min or raise max"]],
    ["gpu min above max", (s) => (s.requirements = { gpu: { min: 2, max: 1 } }), ["spec.requirements.gpu.min: min must not exceed max: lower min or raise max"]],
    [
      "unknown trigger kind",
      (s) => (s.trigger = { onFriday: {} }),
      [
        'spec.trigger.onFriday: unknown field "onFriday"; expected one of: fileIn, fileUpdated, schedule, after, manual, idle',
        "spec.trigger: set exactly one trigger kind: fileIn, fileUpdated, schedule, after, manual, idle",
      ],
    ],
    ["two trigger kinds", (s) => (s.trigger = { manual: {}, idle: {} }), ["spec.trigger: set exactly one trigger kind: fileIn, fileUpdated, schedule, after, manual, idle"]],
    ["no trigger", (s) => delete s.trigger, ["spec.trigger: required: expected object"]],
    ["schedule with every and cron", (s) => (s.trigger = { schedule: { every: "5m", cron: "* * * * *" } }), ["spec.trigger.schedule: set exactly one of every or cron"]],
    [
      "cron with an out-of-range minute",
      (s) => (s.trigger = { schedule: { cron: "61 * * * *" } }),
      ['spec.trigger.schedule.cron: cron must be five fields (minute hour day-of-month month day-of-week), e.g. "*/15 * * * *", or @hourly, @daily, @weekly, @monthly'],
    ],
    ["timeZone without cron", (s) => (s.trigger = { schedule: { every: "5m", timeZone: "UTC" } }), ["spec.trigger.schedule.timeZone: timeZone applies to cron only; remove it or use cron"]],
    ["zero interval", (s) => (s.trigger = { schedule: { every: "0s" } }), ['spec.trigger.schedule.every: "0s" is not a positive duration; write e.g. "30s", "5m", "1h30m" (units: ms, s, m, h)']],
    ["relative watch folder", (s) => (s.trigger = { fileIn: { path: "data" } }), ["spec.trigger.fileIn.path: must be an absolute path, e.g. /scratch/run1/snapshots"]],
    ["misspelt field", (s) => (s.requirments = {}), [expect.stringMatching(/^spec\.requirments: unknown field "requirments"; expected one of: trigger, target, backend, run, /)]],
    ["input escaping the workspace", (s) => (s.stages = { configure: { inputs: [{ from: "/d/x", to: "a/../../etc" }] } }), ["spec.stages.configure.inputs[0].to: must stay inside the execution's workspace: remove '..' segments"]],
    ["absolute input destination", (s) => (s.stages = { configure: { inputs: [{ from: "/d/x", to: "/etc/x" }] } }), ["spec.stages.configure.inputs[0].to: must be relative to the execution's workspace (remove the leading '/')"]],
    ["output from outside the workspace", (s) => (s.stages = { publish: { outputs: [{ from: "..", to: "/d/x" }] } }), ["spec.stages.publish.outputs[0].from: must stay inside the execution's workspace: remove '..' segments"]],
    ["ftp source", (s) => (s.stages = { configure: { inputs: [{ from: "ftp://h/x", to: "x" }] } }), [expect.stringMatching(/^spec\.stages\.configure\.inputs\[0\]\.from: must be an absolute path or a URL with scheme file:\/\/\/, http:\/\/, https:\/\/ or s3:\/\/bucket\//)]],
    ["s3 notification", (s) => (s.stages = { publish: { notify: { finished: "s3://b/k" } } }), ["spec.stages.publish.notify.finished: must be an http:// or https:// URL"]],
    ["slurm without script", (s) => (s.backend = "slurm"), ["spec.run: a Slurm-backed task runs a batch script: set run.script"]],
    ["slurm job target without script", (s) => (s.target = { slurmJob: { id: 42 } }), ["spec.run: a Slurm-backed task runs a batch script: set run.script"]],
    [
      "slurm job target on kubernetes",
      (s) => {
        s.target = { slurmJob: { name: "sim" } };
        s.backend = "kubernetes";
        s.run = { image: "busybox", script: "echo" };
      },
      ["spec.backend: target.slurmJob runs the task through Slurm: set backend to slurm or remove it"],
    ],
    ["pods without image", (s) => (s.backend = "kubernetes"), ["spec.run: a pod-backed task runs a container: set run.image"]],
    ["local with image only", (s) => { s.backend = "local"; s.run = { image: "busybox" }; }, ["spec.run: a local task runs a process: set run.command, run.script, or run.module and run.function"]],
    ["nothing to run", (s) => (s.run = {}), ["spec.run: say what to run: set image, command, script, or module and function"]],
    ["command and script", (s) => (s.run = { command: ["x"], script: "y" }), ["spec.run: set only one of command, script or module"]],
    ["module without function", (s) => (s.run = { module: "pkg.ops" }), ["spec.run: module and function go together: set both or neither"]],
    ["slurm job id and name", (s) => (s.target = { slurmJob: { id: 1, name: "x" } }, s.run = { script: "x" }), ["spec.target.slurmJob: set exactly one of id or name"]],
    ["env value and secret", (s) => (s.run.env = [{ name: "A", value: "1", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }]), ["spec.run.env[0]: set value or valueFrom, not both"]],
    ["duplicate env", (s) => (s.run.env = [{ name: "A", value: "1" }, { name: "A", value: "2" }]), ['spec.run.env[1].name: duplicate name "A"; each name may appear once']],
    ["unquoted number in a command", (s) => (s.run.command = ["zstd", -19]), ['spec.run.command[1]: expected a string, got the number -19; quote it in YAML: "-19"']],
    ["bad contention policy", (s) => (s.policy = { onContention: "explode" }), ['spec.policy.onContention: Invalid option: expected one of "pause"|"requeue"|"cancel"']],
    ["unquoted fraction", (s) => (s.requirements = { cpu: { max: 1.5 } }), ['spec.requirements.cpu.max: a fractional quantity must be quoted, e.g. "1.5"']],
    ["negative memory", (s) => (s.requirements = { memory: { min: -1 } }), ["spec.requirements.memory.min: must not be negative"]],
    ["name too long", (_s, t) => (t.metadata.name = "x".repeat(51)), ["metadata.name: must be a DNS label of at most 50 characters (lower-case letters, digits, '-'): it becomes part of execution, pod and job names"]],
    ["name not a DNS label", (_s, t) => (t.metadata.name = "Snap_Compress"), ["metadata.name: must be a DNS label of at most 50 characters (lower-case letters, digits, '-'): it becomes part of execution, pod and job names"]],
    ["misspelt metadata field", (_s, t) => (t.metadata.lables = {}), [expect.stringMatching(/^metadata\.lables: unknown field "lables"; expected one of: name, /)]],
  ])("%s", (_name, edit, want) => {
    expect(problems(task(edit))).toEqual(want);
  });

  it("reports every problem of a manifest in one pass", () => {
    const manifest = task((s, t) => {
      t.metadata.name = "Bad";
      s.requirements = { cpu: { min: 4, max: 2 } };
      s.run = { command: ["x"], script: "y" };
    });
    expect(problems(manifest)).toHaveLength(3);
  });
});

describe("apiVersion and kind", () => {
  it.each<[unknown, string]>([
    [{ apiVersion: "apps/v1", kind: "Deployment" }, 'apiVersion: unknown apiVersion "apps/v1": not an odop resource; odop resources have apiVersion odop.io/v1alpha1'],
    [{ apiVersion: "odop.io/v1", kind: "OpTask" }, 'apiVersion: unknown apiVersion "odop.io/v1": this odop serves odop.io/v1alpha1 only'],
    [{ apiVersion: "odop.io/v1alpha1", kind: "OpJob" }, 'kind: unknown kind "OpJob" in odop.io/v1alpha1; expected one of OpTask, OpExecution, OpNode'],
    [{ apiVersion: "odop.io/v1alpha1" }, "kind: required: one of OpTask, OpExecution, OpNode"],
    [{ kind: "OpTask" }, "apiVersion: required: odop resources have apiVersion odop.io/v1alpha1"],
    ["just a string", "(document): expected a Kubernetes object with apiVersion, kind, metadata and spec"],
  ])("%j", (manifest, want) => {
    expect(problems(manifest)).toEqual([want]);
  });
});

describe("OpExecution", () => {
  const execution = (edit: (e: any) => void = () => {}) => {
    const e: any = {
      apiVersion: "odop.io/v1alpha1",
      kind: "OpExecution",
      metadata: { name: "snap-1", namespace: "default" },
      spec: { taskRef: { name: "snap" }, executionId: "6f1c2b0e-3d4a-4f5b-8c9d-0e1f2a3b4c5d", trigger: { reason: "Manual" } },
    };
    edit(e);
    return e;
  };

  it("defaults the action to Run", () => {
    const result = validateObject(execution());
    expect(result.ok && result.object.spec).toMatchObject({ action: "Run" });
  });

  it.each<[string, (e: any) => void, string[]]>([
    ["bad id", (e) => (e.spec.executionId = "42"), ["spec.executionId: must be a lower-case UUID, e.g. 3f2c1a9e-7b1d-4c55-9a65-0d3b1f0c2e7a"]],
    ["bad action", (e) => (e.spec.action = "Resume"), ['spec.action: Invalid option: expected one of "Run"|"Pause"|"Stop"|"Skip"']],
    ["bad phase", (e) => (e.status = { phase: "Done" }), [expect.stringMatching(/^status\.phase: Invalid option: expected one of "Pending"\|"Scheduled"/)]],
    ["long name", (e) => (e.metadata.name = "x".repeat(64)), ["metadata.name: must be at most 63 characters: it labels pods and Slurm jobs"]],
  ])("%s", (_name, edit, want) => {
    expect(problems(execution(edit))).toEqual(want);
  });
});

describe("OpNode", () => {
  it("accepts a node without spec and a full status", () => {
    const node = {
      apiVersion: "odop.io/v1alpha1",
      kind: "OpNode",
      metadata: { name: "c1234" },
      status: {
        source: "agent",
        capacity: { cores: 128, memory: "512Gi", gpus: 4 },
        harvestable: { cores: 12, cpuset: "4-15", memory: "64Gi" },
        lastHeartbeatTime: "2026-11-21T06:00:00Z",
        conditions: [{ type: "Fresh", status: "True", reason: "Fresh", message: "", lastTransitionTime: "2026-11-21T06:00:00Z" }],
      },
    };
    expect(problems(node)).toEqual([]);
  });
});
