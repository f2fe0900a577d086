/**
 * The scheduler's inputs and outputs. The scheduler is a pure function of these: no
 * clock, no I/O. The controller builds the inputs from its node windows and the
 * executions it knows, and applies the decisions.
 */

/** One core as the scheduler sees it. */
export type CoreView = {
  id: number;
  /** The main application's smoothed use of this core, 0..1. */
  mainUsage: number;
  /**
   * The main application has left this core idle for the hold window and has not come
   * back to it (hysteresis: it comes back when mainUsage rises above the busy threshold).
   */
  harvestable: boolean;
};

export type NodeView = {
  name: string;
  cores: readonly CoreView[];
  /** Memory odop may use now: available memory less a safety margin. */
  memoryAvailableBytes: number;
  labels: Readonly<Record<string, string>>;
  /** No fresh sample: no new placements here; what runs stays. */
  stale: boolean;
};

export type ContentionPolicy = "pause" | "requeue" | "cancel";

/** An execution that holds cores: running, or paused (still holding its place). */
export type ActiveExecution = {
  key: string;
  task: string;
  node: string;
  cores: readonly number[];
  priority: number;
  onContention: ContentionPolicy;
  /** Paused by the scheduler (contention); the scheduler may resume it. */
  pausedByScheduler: boolean;
  /** Paused by a person: the scheduler leaves it paused, but it keeps its cores. */
  pausedByUser: boolean;
  memoryBytes: number;
};

export type PendingExecution = {
  key: string;
  task: string;
  priority: number;
  /** Milliseconds since the epoch; earlier first among equal priorities. */
  createdAt: number;
  /** Whole cores to pin to: at least min, at most max (min ≥ 1). */
  cores: { min: number; max: number };
  memoryBytes: number;
  nodeSelector?: Readonly<Record<string, string>>;
  /** Only this node (an execution already bound to a node, e.g. co-located with a Slurm job). */
  node?: string;
};

export type SchedulerInput = {
  nodes: readonly NodeView[];
  active: readonly ActiveExecution[];
  pending: readonly PendingExecution[];
  /** Most executions at once per task (running and paused count); absent: no limit. */
  concurrency: ReadonlyMap<string, number>;
};

export type Decision =
  | { type: "start"; key: string; node: string; cores: number[] }
  | { type: "pause"; key: string; reason: "CoresReclaimed" }
  | { type: "requeue"; key: string; reason: "CoresReclaimed" }
  | { type: "cancel"; key: string; reason: "CoresReclaimed" }
  /** Resume a scheduler-paused execution, on these cores (the same or others of its node). */
  | { type: "resume"; key: string; cores: number[] };
