/**
 * One interface over where stages run (DESIGN §4): start a stage, observe it, pause,
 * resume, stop, and re-adopt after a controller restart. A backend keeps what it needs
 * to re-adopt a stage outside the controller's memory (local: files next to the
 * workspace; Kubernetes: pods; Slurm: the job), so `observe` after a restart tells the
 * truth without the controller having seen the stage start.
 */
import type { OpExecution, StageName } from "../api/opexecution.ts";
import type { BackendKind, OpTask } from "../api/optask.ts";

/** Names one attempt of one stage of one execution. */
export type StageRef = {
  /** "namespace/name" of the OpExecution. */
  execution: string;
  stage: StageName;
  attempt: number;
};

export type StagePlan = StageRef & {
  /** The execution and its task: backends that build their own units (pods, Slurm jobs) start from these. */
  task: OpTask;
  opExecution: OpExecution;
  /** The node the scheduler chose. */
  node: string;
  /** Program and arguments, for process backends; no shell is added around them. */
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  /** Cores to pin to. */
  cores: readonly number[];
  ioBound: boolean;
};

export type StageState = (
  /** Never started (or started so briefly before a crash that nothing of it remains). */
  | { state: "absent" }
  | { state: "running"; pids: number[] }
  | { state: "paused"; pids: number[] }
  /** Ended by itself; exitCode 128+N when a signal N killed the program. */
  | { state: "exited"; exitCode: number; cpuSeconds?: number }
  /** Ended because odop stopped it (stop()). */
  | { state: "stopped" }
  /** Gone without a trace of how it ended (killed with its supervisor, machine restarted). */
  | { state: "lost"; message: string }
) &
  StageDetail;

/**
 * Why a stage is in its state, when the backend knows: `reason` is a condition reason
 * (e.g. OutOfMemory, TimeLimit, NodeFailure, Preempted) the controller uses instead of
 * its generic one, `message` says it for people.
 */
export type StageDetail = {
  reason?: string;
  message?: string;
  /** The Slurm job that runs the stage (status.backend.slurmJobId). */
  slurmJobId?: number;
  /** The pod that runs the stage (status.backend.pods). */
  pod?: string;
};

export interface Backend {
  readonly kind: BackendKind;
  /**
   * How often the controller looks at a running stage by itself, besides onChange: the
   * local backend cannot be told when a re-adopted process ends (1 s); the Kubernetes
   * backend's informer tells of every pod change, so its look is a slow safety net.
   * Default 1 s.
   */
  readonly observeEveryMs?: number;
  /** Starts a stage; starting one that already started returns its state instead (idempotent). */
  start(plan: StagePlan): Promise<StageState>;
  observe(ref: StageRef): Promise<StageState>;
  pause(ref: StageRef): Promise<void>;
  /** Resumes a paused stage, pinned to `cores` (which may differ from before). */
  resume(ref: StageRef, cores: readonly number[]): Promise<void>;
  /** Stops a stage and waits until it is gone; stopping a stage that is gone is no error. */
  stop(ref: StageRef): Promise<void>;
  /** Called when a stage this process started ends, so its execution is looked at promptly. */
  onChange(listener: (ref: StageRef) => void): () => void;
  /**
   * The execution has ended: release what its last attempt left behind, as the
   * backend's cleanup policy says (e.g. delete a succeeded pod, keep a failed one for
   * its logs). Optional: the local backend keeps workspaces for `odop logs`.
   */
  cleanup?(ref: StageRef, succeeded: boolean): Promise<void>;
}
