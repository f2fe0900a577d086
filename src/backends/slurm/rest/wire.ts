/**
 * Wire → odop mappings that every API version shares: job states, exit codes, node
 * states, "no value" numbers, and the checks on a submission.
 */
import { z } from "zod";
import type { JobState, JobSubmission, SlurmJob, SlurmNode } from "./types.ts";

const BASE_STATES: ReadonlySet<string> = new Set<JobState>([
  "PENDING",
  "RUNNING",
  "SUSPENDED",
  "COMPLETED",
  "CANCELLED",
  "FAILED",
  "TIMEOUT",
  "NODE_FAIL",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "OUT_OF_MEMORY",
]);

const ENDED: ReadonlySet<JobState> = new Set<JobState>(["COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"]);

/**
 * v0.0.38 reports one name per job: the most telling flag when one is set (Slurm's
 * job_state_string checks COMPLETING, STAGE_OUT, CONFIGURING, … before the base state),
 * so the base state must be inferred. A job still COMPLETING (epilog running) counts as
 * RUNNING: it has not ended until slurmctld says which way it ended.
 */
const BASE_OF_FLAG: Readonly<Record<string, JobState>> = {
  COMPLETING: "RUNNING",
  CONFIGURING: "RUNNING",
  POWER_UP_NODE: "RUNNING",
  RESIZING: "RUNNING",
  SIGNALING: "RUNNING",
  STAGE_OUT: "RUNNING",
  STOPPED: "RUNNING",
  LAUNCH_FAILED: "PENDING",
  RECONFIG_FAIL: "PENDING",
  REQUEUED: "PENDING",
  REQUEUE_FED: "PENDING",
  REQUEUE_HOLD: "PENDING",
  RESV_DEL_HOLD: "PENDING",
  SPECIAL_EXIT: "PENDING",
  EXPEDITING: "PENDING",
  REVOKED: "CANCELLED",
};

/** job_state as names, base state first, then flags → {state, flags}. */
export const JobStateNames = z
  .array(z.string())
  .min(1)
  .transform((names, ctx) => {
    const first = names[0] ?? "";
    if (BASE_STATES.has(first)) return { state: first as JobState, flags: names.slice(1) };
    const implied = BASE_OF_FLAG[first];
    if (implied !== undefined) return { state: implied, flags: names };
    ctx.addIssue({ code: "custom", message: `unknown job state ${JSON.stringify(first)}`, path: [0] });
    return z.NEVER;
  });

export function hasEnded(state: JobState): boolean {
  return ENDED.has(state);
}

/**
 * A number that may be "no value": a plain integer or the data_parser's
 * {set, infinite, number}. Unset and infinite read as undefined.
 */
export const NoValNumber = z.union([
  z.number(),
  z.object({ set: z.boolean().optional(), infinite: z.boolean().optional(), number: z.number().optional() }),
]);
export type NoValNumber = z.infer<typeof NoValNumber>;

export function numberOf(value: NoValNumber | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "number") return value;
  return value.set === false || value.infinite === true ? undefined : value.number;
}

/** The data_parser's `{set: true, infinite: false, number}` for a value odop sends. */
export function setNumber(number: number): { set: true; infinite: false; number: number } {
  return { set: true, infinite: false, number };
}

/** A string that v0.0.38 writes as null when unset. */
export const NullableString = z
  .string()
  .nullish()
  .transform((s) => s ?? "");

/** The fields every adapter reads, before the per-version rules for times and exit codes. */
export type JobFields = {
  jobId: number;
  name: string;
  comment: string;
  state: { state: JobState; flags: string[] };
  stateReason: string;
  exitCode: { returnCode: number; signal?: number } | undefined;
  nodes: string;
  startTime: number | undefined;
  endTime: number | undefined;
  userName: string;
};

/**
 * The common rules: the exit code and end time only once the job has ended (before, Slurm
 * reports 0 and the expected end), the start time only once it has left PENDING (before,
 * the expected start), zero times as unknown.
 */
export function slurmJob(f: JobFields): SlurmJob {
  const { state, flags } = f.state;
  const ended = hasEnded(state);
  const start = positive(f.startTime);
  const end = positive(f.endTime);
  return {
    jobId: f.jobId,
    name: f.name,
    comment: f.comment,
    state,
    flags,
    stateReason: f.stateReason,
    ...(ended && f.exitCode !== undefined ? { exitCode: f.exitCode } : {}),
    nodes: f.nodes,
    ...(state !== "PENDING" && start !== undefined ? { startTime: start } : {}),
    ...(ended && end !== undefined ? { endTime: end } : {}),
    ...(f.userName === "" ? {} : { userName: f.userName }),
  };
}

/** v0.0.38's exit_code: the raw wait(2) status of the batch script. */
export function exitCodeOfWaitStatus(status: number | null | undefined): { returnCode: number; signal?: number } | undefined {
  if (status === null || status === undefined || status < 0) return undefined;
  const signal = status & 0x7f;
  const returnCode = (status >> 8) & 0xff;
  return signal === 0 ? { returnCode } : { returnCode, signal };
}

/** The data_parser's process_exit_code_verbose. */
export const ExitCodeVerbose = z.object({
  status: z.array(z.string()).default([]),
  return_code: NoValNumber.optional(),
  signal: z.object({ id: NoValNumber.optional(), name: z.string().optional() }).optional(),
});

export function exitCodeOfVerbose(code: z.infer<typeof ExitCodeVerbose> | undefined): { returnCode: number; signal?: number } | undefined {
  if (code === undefined || code.status.includes("PENDING") || code.status.includes("INVALID")) return undefined;
  const returnCode = numberOf(code.return_code) ?? 0;
  const signal = numberOf(code.signal?.id);
  return signal === undefined || signal <= 0 ? { returnCode } : { returnCode, signal };
}

const NODE_BASE_STATES: ReadonlySet<string> = new Set(["INVALID", "UNKNOWN", "DOWN", "IDLE", "ALLOCATED", "ERROR", "MIXED", "FUTURE", "EXTERNAL"]);

/** Node state names, upper case, the base state first (wherever the wire put it). */
export function nodeStates(names: readonly string[]): string[] {
  const upper = names.map((n) => n.toUpperCase());
  const base = upper.findIndex((n) => NODE_BASE_STATES.has(n));
  return base <= 0 ? upper : [upper[base] ?? "", ...upper.filter((_, i) => i !== base)];
}

/** The fields every adapter reads from a node, before the rules for "no value" numbers. */
export type NodeFields = {
  name: string;
  /** Base state and flags, in whatever order and case the wire has them. */
  state: readonly string[];
  cpus: number;
  allocatedCpus: number;
  realMemoryMiB: number;
  allocatedMemoryMiB: number;
  freeMemoryMiB: number | undefined;
  cpuLoad: number | undefined;
  partitions: string[];
  reason: string | null | undefined;
};

/** The common rules: node states normalised, NO_VAL memory and load as unknown, an empty reason as none. */
export function slurmNode(f: NodeFields): SlurmNode {
  const free = mebibytes(f.freeMemoryMiB);
  const load = cpuLoad(f.cpuLoad);
  return {
    name: f.name,
    state: nodeStates(f.state),
    cpus: f.cpus,
    allocatedCpus: f.allocatedCpus,
    realMemoryMiB: f.realMemoryMiB,
    allocatedMemoryMiB: f.allocatedMemoryMiB,
    ...(free === undefined ? {} : { freeMemoryMiB: free }),
    ...(load === undefined ? {} : { cpuLoad: load }),
    partitions: f.partitions,
    ...(f.reason === undefined || f.reason === null || f.reason === "" ? {} : { reason: f.reason }),
  };
}

/** Memory in MiB, or undefined for Slurm's NO_VAL64 (as −2 or as 2^64−2) and other nonsense. */
function mebibytes(value: number | undefined): number | undefined {
  return value === undefined || value < 0 || value >= 2 ** 53 ? undefined : value;
}

/** cpu_load (load × 100), or undefined for NO_VAL (2^32−2) and above. */
function cpuLoad(value: number | undefined): number | undefined {
  return value === undefined || value < 0 || value >= 0xfffffffe ? undefined : value;
}

/** Checks what the wire formats cannot carry; throws a RangeError naming the field. */
export function checkSubmission(job: JobSubmission): void {
  for (const key of Object.keys(job.environment)) {
    if (key === "" || key.includes("=") || key.includes("\0")) throw new RangeError(`job ${job.name}: environment name ${JSON.stringify(key)} is not valid (empty, or contains "=" or NUL)`);
  }
  const whole = (what: string, n: number | undefined, min: number) => {
    if (n !== undefined && (!Number.isInteger(n) || n < min)) throw new RangeError(`job ${job.name}: ${what} must be a whole number ≥ ${min} (got ${n})`);
  };
  whole("cpusPerTask", job.cpusPerTask, 1);
  whole("memoryPerNodeMiB", job.memoryPerNodeMiB, 1);
  whole("timeLimitMinutes", job.timeLimitMinutes, 1);
}

function positive(n: number | undefined): number | undefined {
  return n === undefined || !(n > 0) ? undefined : n;
}
