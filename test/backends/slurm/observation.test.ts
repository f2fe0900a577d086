import { describe, expect, it } from "vitest";
import type { StageName } from "../../../src/api/opexecution.ts";
import { type AttemptRecord, observeStage } from "../../../src/backends/slurm/observation.ts";
import type { JobState, SlurmJob } from "../../../src/backends/slurm/rest/types.ts";

const record = (r: Partial<Omit<AttemptRecord, "started" | "exitCodes">> & { started?: StageName[]; exits?: [StageName, number][] } = {}): AttemptRecord => ({
  ...(r.jobId === undefined ? {} : { jobId: r.jobId }),
  started: new Set(r.started ?? []),
  exitCodes: new Map(r.exits ?? []),
  paused: r.paused ?? false,
  stopped: r.stopped ?? false,
});
const job = (state: JobState, extra: Partial<SlurmJob> = {}): SlurmJob => ({ jobId: 7, name: "odop-x", comment: "", state, flags: [], stateReason: "None", nodes: "n1", ...extra });

describe("observeStage", () => {
  it.each([
    ["no job recorded", "run", record(), undefined, { state: "absent" }],
    ["exit code recorded wins", "run", record({ jobId: 7, started: ["run"], exits: [["run", 0]] }), job("RUNNING"), { state: "exited", exitCode: 0 }],
    ["failed stage", "run", record({ jobId: 7, started: ["run"], exits: [["run", 3]] }), job("FAILED"), { state: "exited", exitCode: 3 }],
    ["oom", "run", record({ jobId: 7, started: ["run"], exits: [["run", 137]] }), job("OUT_OF_MEMORY"), { state: "exited", exitCode: 137, reason: "OutOfMemory" }],
    ["pending job", "configure", record({ jobId: 7 }), job("PENDING", { stateReason: "Resources" }), { state: "running", pids: [], reason: "JobPending" }],
    ["running stage", "run", record({ jobId: 7, started: ["run"] }), job("RUNNING"), { state: "running", pids: [] }],
    ["stage not started yet in a running job", "publish", record({ jobId: 7, started: ["run"] }), job("RUNNING"), { state: "running", pids: [] }],
    ["paused", "run", record({ jobId: 7, started: ["run"], paused: true }), job("RUNNING"), { state: "paused", pids: [] }],
    ["stopped by odop", "run", record({ jobId: 7, started: ["run"], stopped: true }), job("CANCELLED"), { state: "stopped", reason: "StoppedByOdop" }],
    ["timeout", "run", record({ jobId: 7, started: ["run"] }), job("TIMEOUT"), { state: "lost", reason: "TimeLimit" }],
    ["node failure", "run", record({ jobId: 7, started: ["run"] }), job("NODE_FAIL"), { state: "lost", reason: "NodeFailure" }],
    ["boot failure", "configure", record({ jobId: 7 }), job("BOOT_FAIL"), { state: "lost", reason: "NodeFailure" }],
    ["preempted", "run", record({ jobId: 7, started: ["run"] }), job("PREEMPTED"), { state: "lost", reason: "Preempted" }],
    ["scancel outside odop", "run", record({ jobId: 7, started: ["run"] }), job("CANCELLED"), { state: "lost", reason: "CancelledInSlurm" }],
    ["oom without an exit code", "run", record({ jobId: 7, started: ["run"] }), job("OUT_OF_MEMORY"), { state: "lost", reason: "OutOfMemory" }],
    ["deadline", "run", record({ jobId: 7 }), job("DEADLINE"), { state: "lost", reason: "DeadlineExceeded" }],
    ["job failed before the stage", "configure", record({ jobId: 7 }), job("FAILED", { exitCode: { returnCode: 1 } }), { state: "lost", reason: "JobFailed" }],
    ["completed without the stage", "publish", record({ jobId: 7, exits: [["run", 0]] }), job("COMPLETED"), { state: "lost", reason: "StageNotRun" }],
    ["job forgotten by Slurm", "run", record({ jobId: 7, started: ["run"] }), undefined, { state: "lost", reason: "JobGone" }],
  ] as const)("%s", (_name, stage, rec, j, want) => {
    expect(observeStage(stage, rec, j)).toMatchObject(want);
  });

  it("says where and how the job ended", () => {
    const state = observeStage("run", record({ jobId: 42, started: ["run"] }), job("TIMEOUT", { jobId: 42, exitCode: { returnCode: 0, signal: 15 } }));
    expect(state).toEqual({ state: "lost", reason: "TimeLimit", message: "Slurm job 42 reached its Slurm time limit during run (signal 15)" });
  });
});
