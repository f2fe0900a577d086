/**
 * What the Slurm backend reports for one stage of an attempt (pure: no I/O). Two
 * sources, read by the backend and handed in here:
 *
 * - the attempt's state folder, written by the batch script (script.ts): which stages
 *   started and each one's exit code; and by the backend: the job it submitted, and
 *   its own marks (paused, stopped);
 * - the job as slurmctld reports it through slurmrestd (undefined when Slurm no longer
 *   knows it: MinJobAge passed, or the controller was restarted without state).
 *
 * A stage's own exit code wins when it is there. When the job ended without one, the
 * job's state says why, with a reason of SLURM_REASONS.
 */
import type { StageName } from "../../api/opexecution.ts";
import type { StageState } from "../types.ts";
import type { JobState, SlurmJob } from "./rest/types.ts";

/**
 * Reasons the Slurm backend sets on a StageState:
 * - `TimeLimit` (lost): Slurm ended the job at its time limit (TIMEOUT).
 * - `OutOfMemory` (exited or lost): the job hit its memory limit (OUT_OF_MEMORY).
 * - `NodeFailure` (lost): the node failed (NODE_FAIL) or did not boot (BOOT_FAIL).
 * - `Preempted` (lost): Slurm preempted the job (PREEMPTED); the execution goes back to Pending.
 * - `CancelledInSlurm` (lost): someone cancelled the job outside odop (scancel).
 * - `DeadlineExceeded` (lost): the job's Slurm deadline passed (DEADLINE).
 * - `JobFailed` (lost): the job failed before the stage could record an exit code (e.g. its batch script could not start).
 * - `JobGone` (lost): Slurm does not know the job any more and the stage left no exit code.
 * - `StageNotRun` (lost): the job completed without running this stage.
 * - `StoppedByOdop` (stopped): odop cancelled the job.
 * - `JobPending` (running): the job waits for resources; the message has Slurm's state reason.
 */
export const SLURM_REASONS = {
  TimeLimit: "TimeLimit",
  OutOfMemory: "OutOfMemory",
  NodeFailure: "NodeFailure",
  Preempted: "Preempted",
  CancelledInSlurm: "CancelledInSlurm",
  DeadlineExceeded: "DeadlineExceeded",
  JobFailed: "JobFailed",
  JobGone: "JobGone",
  StageNotRun: "StageNotRun",
  StoppedByOdop: "StoppedByOdop",
  JobPending: "JobPending",
} as const;

/** What the attempt's state folder says. */
export type AttemptRecord = {
  /** The job odop submitted for this attempt; undefined when none is recorded. */
  jobId?: number;
  /** Stages that started (their .started file exists). */
  started: ReadonlySet<StageName>;
  /** Exit codes the script recorded. */
  exitCodes: ReadonlyMap<StageName, number>;
  /** odop paused the job's steps (SIGSTOP) and has not resumed them. */
  paused: boolean;
  /** odop cancelled the job. */
  stopped: boolean;
};

type ActiveState = "PENDING" | "RUNNING" | "SUSPENDED";
const isActive = (state: JobState): state is ActiveState => state === "PENDING" || state === "RUNNING" || state === "SUSPENDED";

/** Reasons and messages for a job that ended without the stage's exit code. */
const ENDED: Record<Exclude<JobState, ActiveState>, { reason: string; what: string }> = {
  COMPLETED: { reason: SLURM_REASONS.StageNotRun, what: "completed" },
  CANCELLED: { reason: SLURM_REASONS.CancelledInSlurm, what: "was cancelled outside odop (scancel?)" },
  FAILED: { reason: SLURM_REASONS.JobFailed, what: "failed" },
  TIMEOUT: { reason: SLURM_REASONS.TimeLimit, what: "reached its Slurm time limit" },
  NODE_FAIL: { reason: SLURM_REASONS.NodeFailure, what: "lost its node (NODE_FAIL)" },
  BOOT_FAIL: { reason: SLURM_REASONS.NodeFailure, what: "could not boot its node (BOOT_FAIL)" },
  PREEMPTED: { reason: SLURM_REASONS.Preempted, what: "was preempted by Slurm" },
  DEADLINE: { reason: SLURM_REASONS.DeadlineExceeded, what: "passed its Slurm deadline" },
  OUT_OF_MEMORY: { reason: SLURM_REASONS.OutOfMemory, what: "ran out of memory" },
};

/** The state of `stage` given the attempt's record and the job (undefined: Slurm does not know it). */
export function observeStage(stage: StageName, record: AttemptRecord, job: SlurmJob | undefined): StageState {
  const exitCode = record.exitCodes.get(stage);
  const jobName = record.jobId === undefined ? "the job" : `job ${record.jobId}`;
  if (exitCode !== undefined) {
    if (exitCode !== 0 && job?.state === "OUT_OF_MEMORY") {
      return { state: "exited", exitCode, reason: SLURM_REASONS.OutOfMemory, message: `${stage} ran out of memory in Slurm ${jobName} (exit code ${exitCode})` };
    }
    return { state: "exited", exitCode };
  }
  if (record.stopped) return { state: "stopped", reason: SLURM_REASONS.StoppedByOdop, message: `odop cancelled Slurm ${jobName}` };
  if (record.jobId === undefined) return { state: "absent" };
  if (job === undefined) {
    return { state: "lost", reason: SLURM_REASONS.JobGone, message: `Slurm no longer knows ${jobName} and ${stage} left no exit code` };
  }
  if (isActive(job.state)) {
    if (job.state === "PENDING") {
      return { state: "running", pids: [], reason: SLURM_REASONS.JobPending, message: `Slurm ${jobName} is pending (${job.stateReason})` };
    }
    // A stage that has not started yet will be run by the script: waiting counts as running.
    if (record.paused && record.started.has(stage)) return { state: "paused", pids: [] };
    return { state: "running", pids: [] };
  }
  const ended = ENDED[job.state];
  const detail = job.exitCode === undefined ? "" : job.exitCode.signal ? ` (signal ${job.exitCode.signal})` : ` (exit code ${job.exitCode.returnCode})`;
  const where = record.started.has(stage) ? `during ${stage}` : `before ${stage} started`;
  return { state: "lost", reason: ended.reason, message: `Slurm ${jobName} ${ended.what} ${where}${detail}` };
}
