/**
 * What odop needs of slurmrestd, in odop's words, whatever the API version. Each
 * version's adapter (v0038.ts, v0040.ts, …) maps these to and from its wire shapes,
 * validated with zod at the edge; the backend and the node source only see these.
 */

/** The slurmrestd API versions odop speaks. v0.0.38 is the one tests run for real (Slurm 22.05). */
export const SLURM_API_VERSIONS = ["v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.44"] as const;
export type SlurmApiVersion = (typeof SLURM_API_VERSIONS)[number];

export type JobSubmission = {
  /** Job name (Slurm shows it in squeue). */
  name: string;
  /** Free text kept with the job; odop puts the execution's identity here to re-adopt it. */
  comment: string;
  /** The batch script, starting with "#!". */
  script: string;
  workingDirectory: string;
  /** Path of the batch script's stdout (and stderr, unless standardError is set). */
  standardOutput: string;
  standardError?: string;
  /** The job's whole environment (Slurm does not add the submitter's). */
  environment: Readonly<Record<string, string>>;
  /** Node(s) the job must run on (Slurm hostlist syntax), e.g. "node12". */
  requiredNodes?: string;
  partition?: string;
  account?: string;
  qos?: string;
  /** One task with this many CPUs. */
  cpusPerTask: number;
  /** Memory per node in MiB; Slurm's default when absent. */
  memoryPerNodeMiB?: number;
  /** Time limit in whole minutes; the partition's when absent. */
  timeLimitMinutes?: number;
};

export type SubmitResult = { jobId: number };

/**
 * Base job states (Slurm's JOB_STATE_BASE names). Newer APIs report an array of
 * flags: the base state is its first entry, the rest go to `flags`.
 */
export type JobState =
  | "PENDING"
  | "RUNNING"
  | "SUSPENDED"
  | "COMPLETED"
  | "CANCELLED"
  | "FAILED"
  | "TIMEOUT"
  | "NODE_FAIL"
  | "PREEMPTED"
  | "BOOT_FAIL"
  | "DEADLINE"
  | "OUT_OF_MEMORY";

export type SlurmJob = {
  jobId: number;
  name: string;
  comment: string;
  state: JobState;
  /** State flags, e.g. COMPLETING, CONFIGURING, REQUEUED (v0.0.40+: the rest of job_state; v0.0.38: none). */
  flags: string[];
  /** Why the job is in its state (Slurm's state_reason), e.g. "Resources", "None". */
  stateReason: string;
  /** The batch script's exit code, when it ended by itself; signal when a signal killed it. */
  exitCode?: { returnCode: number; signal?: number };
  /** Nodes allocated (hostlist), empty while pending. */
  nodes: string;
  /** CPUs allocated (requested while pending); undefined when not reported. */
  cpus?: number;
  /** Unix seconds; undefined when not (yet) known. */
  startTime?: number;
  endTime?: number;
  userName?: string;
};

export type SlurmNode = {
  name: string;
  /** Base state first (IDLE, MIXED, ALLOCATED, DOWN, DRAIN…), then flags. */
  state: string[];
  cpus: number;
  allocatedCpus: number;
  /** MiB. */
  realMemoryMiB: number;
  allocatedMemoryMiB: number;
  /** MiB, as the node reports; undefined when not reported. */
  freeMemoryMiB?: number;
  /** Slurm's cpu_load: a 5-minute load average × 100, too slow for harvesting decisions. */
  cpuLoad?: number;
  partitions: string[];
  reason?: string;
};

export type Signal = "SIGSTOP" | "SIGCONT" | "SIGTERM" | "SIGKILL" | "SIGURG";

/** One slurmrestd, one API version. Every method validates the reply with zod and throws the errors of errors.ts. */
export interface SlurmApi {
  readonly version: SlurmApiVersion;
  /**
   * What signal() reaches: "steps", the tasks of the job's steps only (scancel without
   * --full), or "job", the batch script and srun as well, not the steps' tasks
   * (openapi/v0.0.38 signals with KILL_FULL_JOB; seen on Slurm 22.05.8: SIGSTOP then
   * stops the batch script and srun while the tasks run on).
   */
  readonly signalReaches: "steps" | "job";
  /** GET …/ping: the Slurm release when the server says it. */
  ping(): Promise<{ release?: string }>;
  /** POST …/job/submit. Never retried by the client (a retry could submit twice). */
  submit(job: JobSubmission): Promise<SubmitResult>;
  /** GET …/job/{id}; undefined when slurmctld does not know the job (any more). */
  job(jobId: number): Promise<SlurmJob | undefined>;
  /** GET …/jobs: every job slurmctld knows. */
  jobs(): Promise<SlurmJob[]>;
  /** Sends a signal to the job; what it reaches is `signalReaches`. */
  signal(jobId: number, signal: Signal): Promise<void>;
  /** Cancels the job (batch script and steps); a job already ended or unknown is no error. */
  cancel(jobId: number): Promise<void>;
  nodes(): Promise<SlurmNode[]>;
}
