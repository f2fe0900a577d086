/**
 * The sample cluster every version's fixtures describe (fixtures/<version>/), and what
 * the adapters must make of it. The same jobs and nodes in every version, so one table
 * of expected values serves them all, with the few differences spelt out.
 */
import type { JobSubmission, SlurmApiVersion, SlurmJob, SlurmNode } from "../../../../src/backends/slurm/rest/types.ts";

/** The submission submit-request.json was built from. */
export const SAMPLE_SUBMISSION: JobSubmission = {
  name: "odop-compress-7f3a",
  comment: "odop:v1 default/compress-7f3a",
  script: "#!/bin/sh\nset -eu\nsrun -n1 odop stage configure\nsrun -n1 odop stage run\nsrun -n1 odop stage publish\n",
  workingDirectory: "/scratch/odop/compress-7f3a",
  standardOutput: "/scratch/odop/compress-7f3a/slurm-%j.out",
  environment: { PATH: "/usr/local/bin:/usr/bin:/bin", ODOP_EXECUTION: "default/compress-7f3a" },
  requiredNodes: "node12",
  partition: "debug",
  cpusPerTask: 4,
  memoryPerNodeMiB: 2048,
  timeLimitMinutes: 30,
};

/** submit-reply.json's job id. */
export const SUBMITTED_JOB_ID = 101;

const T0 = 1767225600; // 2026-01-01T00:00:00Z

export const RUNNING: SlurmJob = {
  jobId: 101,
  name: "odop-compress-7f3a",
  comment: "odop:v1 default/compress-7f3a",
  state: "RUNNING",
  flags: [],
  stateReason: "None",
  nodes: "node12",
  startTime: T0 + 10,
  userName: "odop",
};

/** job-failed.json: the script exited with 1. */
export const FAILED: SlurmJob = {
  jobId: 102,
  name: "odop-index-2b11",
  comment: "odop:v1 default/index-2b11",
  state: "FAILED",
  flags: [],
  stateReason: "NonZeroExitCode",
  exitCode: { returnCode: 1 },
  nodes: "node13",
  startTime: T0 + 20,
  endTime: T0 + 95,
  userName: "odop",
};

/** job-timeout.json: killed by SIGTERM at its time limit. */
export const TIMED_OUT: SlurmJob = {
  jobId: 103,
  name: "odop-scan-9c0d",
  comment: "odop:v1 default/scan-9c0d",
  state: "TIMEOUT",
  flags: [],
  stateReason: "TimeLimit",
  exitCode: { returnCode: 0, signal: 15 },
  nodes: "node12",
  startTime: T0 + 30,
  endTime: T0 + 30 + 1800,
  userName: "odop",
};

const PENDING: SlurmJob = {
  jobId: 104,
  name: "odop-compress-8e4b",
  comment: "odop:v1 default/compress-8e4b",
  state: "PENDING",
  flags: [],
  stateReason: "Resources",
  nodes: "",
  userName: "odop",
};

/** Paused by odop (SIGSTOP): v0.0.38 says "STOPPED", later versions ["RUNNING", "STOPPED"]. */
const STOPPED: SlurmJob = { ...RUNNING, jobId: 105, name: "odop-compress-9f5c", comment: "odop:v1 default/compress-9f5c", flags: ["STOPPED"] };

const COMPLETED: SlurmJob = {
  jobId: 107,
  name: "odop-copy-1a2b",
  comment: "odop:v1 default/copy-1a2b",
  state: "COMPLETED",
  flags: [],
  stateReason: "None",
  exitCode: { returnCode: 0 },
  nodes: "node13",
  startTime: T0 + 40,
  endTime: T0 + 70,
  userName: "odop",
};

/**
 * Job 106, ended with its epilog still running. v0.0.38 reports only "COMPLETING", so
 * it reads as not ended yet; later versions say ["COMPLETED", "COMPLETING"].
 */
function completing(version: SlurmApiVersion): SlurmJob {
  const base = { ...COMPLETED, jobId: 106, name: "odop-copy-3c4d", comment: "odop:v1 default/copy-3c4d", stateReason: "None" };
  if (version === "v0.0.38") {
    const { exitCode: _e, endTime: _t, ...running } = base;
    return { ...running, state: "RUNNING", flags: ["COMPLETING"] };
  }
  return { ...base, flags: ["COMPLETING"] };
}

/** jobs.json, in order. */
export function expectedJobs(version: SlurmApiVersion): SlurmJob[] {
  return [RUNNING, PENDING, STOPPED, completing(version), COMPLETED];
}

/** nodes.json, in order. */
export const NODES: SlurmNode[] = [
  {
    name: "node12",
    state: ["MIXED"],
    cpus: 32,
    allocatedCpus: 4,
    realMemoryMiB: 128000,
    allocatedMemoryMiB: 2048,
    freeMemoryMiB: 101000,
    cpuLoad: 412,
    partitions: ["debug"],
  },
  {
    name: "node13",
    state: ["IDLE", "DRAIN"],
    cpus: 16,
    allocatedCpus: 0,
    realMemoryMiB: 64000,
    allocatedMemoryMiB: 0,
    cpuLoad: 3,
    partitions: ["debug", "long"],
    reason: "disk replaced",
  },
];

/** The Slurm release each version's fixtures report. */
export const RELEASES: Readonly<Record<SlurmApiVersion, string>> = {
  "v0.0.38": "22.05.8",
  "v0.0.40": "23.11.10",
  "v0.0.41": "24.05.8",
  "v0.0.42": "24.11.6",
  "v0.0.44": "25.11.7",
};
