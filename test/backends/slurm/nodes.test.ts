import { describe, expect, it } from "vitest";
import { expandHostlist, opNodeStatusOf, slurmJobSelector, slurmNodeViews } from "../../../src/backends/slurm/nodes.ts";
import type { SlurmJob, SlurmNode } from "../../../src/backends/slurm/rest/types.ts";
import { OpTask } from "../../../src/api/optask.ts";

const node = (name: string, extra: Partial<SlurmNode> = {}): SlurmNode => ({
  name, state: ["MIXED"], cpus: 8, allocatedCpus: 0, realMemoryMiB: 16_384, allocatedMemoryMiB: 0, partitions: ["debug"], ...extra,
});
const job = (jobId: number, nodes: string, extra: Partial<SlurmJob> = {}): SlurmJob => ({
  jobId, name: "sim", comment: "", state: "RUNNING", flags: [], stateReason: "None", nodes, ...extra,
});

describe("expandHostlist", () => {
  it.each([
    ["n1", ["n1"]],
    ["n[1-3]", ["n1", "n2", "n3"]],
    ["n[01-03,7],login", ["n01", "n02", "n03", "n7", "login"]],
    ["r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]],
    ["", []],
  ])("%s", (list, names) => expect(expandHostlist(list)).toEqual(names));

  it("refuses a broken range", () => {
    expect(() => expandHostlist("n[3-1]")).toThrow(/bad hostlist range "3-1"/);
    expect(() => expandHostlist("n[1-2")).toThrow(/without "]"/);
  });
});

describe("slurmNodeViews", () => {
  it("numbers cores allocated to other jobs first, leaves odop's own jobs out, and labels nodes with their jobs", () => {
    const jobs = [
      job(10, "n1", { cpus: 3, startTime: 100 }),
      job(11, "n[1-2]", { cpus: 4, startTime: 200 }),
      job(12, "n1", { cpus: 2, comment: "odop.io/execution-id=abc,execution=default/x,attempt=1" }),
      job(13, "n2", { state: "PENDING", cpus: 8 }),
    ];
    const views = slurmNodeViews([node("n1", { allocatedCpus: 7, allocatedMemoryMiB: 4096 }), node("n2", { allocatedCpus: 2 })], jobs);
    const n1 = views.find((v) => v.name === "n1");
    expect(n1?.cores.filter((c) => !c.harvestable).map((c) => c.id)).toEqual([0, 1, 2, 3, 4]);
    expect(n1?.memoryAvailableBytes).toBe((16_384 - 4096 - 1024) * 2 ** 20);
    expect(n1?.labels).toMatchObject({ "slurm.odop.io/job-10": "true", "slurm.odop.io/job-11": "true", "slurm.odop.io/job-name-sim": "true", "slurm.odop.io/partition-debug": "true" });
    expect(n1?.labels["slurm.odop.io/job-12"]).toBeUndefined();
    // The newest running job named "sim" (11) runs on n1 and n2.
    expect(views.find((v) => v.name === "n2")?.labels["slurm.odop.io/job-name-sim"]).toBe("true");
    expect(views.find((v) => v.name === "n2")?.labels["slurm.odop.io/job-13"]).toBeUndefined();
  });

  it("marks nodes Slurm cannot use stale and filters by partition", () => {
    const views = slurmNodeViews([node("a", { state: ["IDLE", "DRAIN"] }), node("b", { partitions: ["gpu"] })], [], { partition: "debug" });
    expect(views.map((v) => [v.name, v.stale])).toEqual([["a", true]]);
  });

  it("gives an OpNode status from slurmctld's figures", () => {
    const n = node("n1", { allocatedCpus: 2 });
    const [view] = slurmNodeViews([n], [job(1, "n1", { cpus: 2 })]);
    expect(opNodeStatusOf(n, view, "2026-11-21T00:00:00Z")).toEqual({
      source: "slurm",
      capacity: { cores: 8, memory: "16384Mi", gpus: 0 },
      harvestable: { cores: 6, cpuset: "2-7", memory: "15360Mi", gpus: 0 },
      lastHeartbeatTime: "2026-11-21T00:00:00Z",
      slurm: { state: ["MIXED"], partitions: ["debug"], allocatedCores: 2 },
    });
  });
});

describe("slurmJobSelector", () => {
  const task = (slurmJob: unknown) =>
    OpTask.parse({ apiVersion: "odop.io/v1alpha1", kind: "OpTask", metadata: { name: "t", namespace: "default" }, spec: { trigger: { manual: {} }, target: { slurmJob }, run: { script: "true" } } });
  it("selects the nodes of the job by id or by name", () => {
    expect(slurmJobSelector(task({ id: 42 }))).toEqual({ "slurm.odop.io/job-42": "true" });
    expect(slurmJobSelector(task({ name: "sim" }))).toEqual({ "slurm.odop.io/job-name-sim": "true" });
  });
});
