/**
 * OpExecution: one run of an OpTask, with its own id and lifecycle. People watch them
 * with `kubectl get opexecutions -w` and steer them through `spec.action`.
 */
import { z } from "zod";
import { asReason, Conditions, DnsLabel, fitConditions, keyedList, resource, strict, Timestamp, truncated } from "./meta.ts";
import { EnvVar, BACKENDS } from "./optask.ts";
import { withRules } from "./rules.ts";

/**
 * The lifecycle. Pending → Scheduled → Configuring → Running ⇄ Paused → Publishing →
 * Succeeded; or Failed, Cancelled, Skipped, DepFailed. A preempted execution goes back
 * to Pending with a reason.
 */
export const EXECUTION_PHASES = [
  "Pending",
  "Scheduled",
  "Configuring",
  "Running",
  "Paused",
  "Publishing",
  "Succeeded",
  "Failed",
  "Cancelled",
  "Skipped",
  "DepFailed",
] as const;
export type ExecutionPhase = (typeof EXECUTION_PHASES)[number];

/** Phases an execution never leaves. */
export const TERMINAL_PHASES: ReadonlySet<ExecutionPhase> = new Set(["Succeeded", "Failed", "Cancelled", "Skipped", "DepFailed"]);

/** Why an execution was created. */
export const TRIGGER_REASONS = ["FileIn", "FileUpdated", "Schedule", "After", "Manual", "Idle", "Retry"] as const;

/**
 * What a person asks of an execution: Run (the default, and how a paused one resumes),
 * Pause, Stop (cancel; stages are stopped) or Skip (do not run it; a running one is
 * stopped and marked Skipped).
 */
export const ACTIONS = ["Run", "Pause", "Stop", "Skip"] as const;
export type Action = (typeof ACTIONS)[number];

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const OpExecutionSpec = strict({
  taskRef: strict({ name: DnsLabel.describe("The OpTask, in the same namespace.") }),
  executionId: z
    .string()
    .regex(UUID_PATTERN, { error: "must be a lower-case UUID, e.g. 3f2c1a9e-7b1d-4c55-9a65-0d3b1f0c2e7a" })
    .describe("Stable id of this execution, kept across retries and controller restarts."),
  trigger: strict({
    reason: z.enum(TRIGGER_REASONS),
    files: z.array(z.string().max(4096)).max(10_000).optional().describe("The files that triggered it (fileIn, fileUpdated, after)."),
    upstream: z.array(z.string().max(253)).max(32).optional().describe("Upstream executions (after)."),
    time: Timestamp.optional().describe("When the trigger fired."),
  }),
  options: strict({
    args: z.array(z.string().max(4096)).max(1024).optional().describe("Replace run.args for this execution."),
    env: keyedList(EnvVar, "name", 256).optional().describe("Added to run.env for this execution."),
    priority: z.int().min(-1000).max(1000).optional().describe("Replace policy.priority for this execution."),
  }).optional(),
  action: z.enum(ACTIONS).default("Run").describe("Run, Pause, Stop or Skip."),
});
export type OpExecutionSpec = z.infer<typeof OpExecutionSpec>;

/** Limits of status.reason/message and of each stage's reason/message. */
export const STATUS_REASON_MAX = 256;
export const STATUS_MESSAGE_MAX = 4096;

export const STAGES = ["configure", "run", "publish"] as const;
export type StageName = (typeof STAGES)[number];

export const StageStatus = strict({
  name: z.enum(STAGES),
  phase: z.enum(["Pending", "Running", "Paused", "Succeeded", "Failed", "Skipped"]),
  startedAt: Timestamp.optional(),
  finishedAt: Timestamp.optional(),
  exitCode: z.int().optional(),
  reason: z.string().max(STATUS_REASON_MAX).optional(),
  message: z.string().max(STATUS_MESSAGE_MAX).optional(),
  attempt: z.int().min(1).optional().describe("The attempt this stage status belongs to."),
  pausedAt: Timestamp.optional().describe("Set while the stage is paused."),
  pausedSeconds: z.number().min(0).optional().describe("Time spent paused; not counted against requirements.time."),
});

/** Condition types of an OpExecution. */
export const OPEXECUTION_CONDITIONS = {
  /** Placed on a node. Reasons: Placed, NoCapacity, NodeStale, Preempted. */
  Scheduled: "Scheduled",
  /** A stage is running now. Reasons: Configuring, Running, Publishing, Paused. */
  Running: "Running",
  /** The execution has ended. Reasons: Succeeded, StageFailed, TimeLimit, OutOfMemory, NodeFailure, Cancelled, Skipped, UpToDate, DepFailed, DeadlineExceeded. */
  Complete: "Complete",
  /** The backend cannot be reached. Reasons: SlurmUnreachable, ApiServerUnreachable. */
  BackendReachable: "BackendReachable",
} as const;

export const OpExecutionStatus = strict({
  observedGeneration: z.int().min(0).optional(),
  phase: z.enum(EXECUTION_PHASES).optional(),
  reason: z.string().max(STATUS_REASON_MAX).optional().describe("Why it is in this phase, CamelCase."),
  message: z.string().max(STATUS_MESSAGE_MAX).optional(),
  conditions: Conditions.optional(),
  node: z.string().max(253).optional(),
  cores: z.array(z.int().min(0)).max(4096).optional().describe("The cores it is pinned to."),
  cpuset: z.string().max(1024).optional().describe("The same cores as a cpuset list, e.g. 0-3,8."),
  backend: strict({
    kind: z.enum(BACKENDS),
    pods: z.array(z.string().max(253)).max(16).optional(),
    slurmJobId: z.int().min(1).optional(),
    pids: z.array(z.int().min(1)).max(16).optional(),
    workspace: z.string().max(4096).optional().describe("Where the execution's workspace is (local backend)."),
  }).optional(),
  stages: keyedList(StageStatus, "name", 3).optional(),
  attempts: z.int().min(0).optional(),
  retries: z.int().min(0).optional().describe("Failed attempts retried so far (policy.retries.limit caps them)."),
  nextAttemptAt: Timestamp.optional().describe("A failed execution that will be retried waits until then."),
  startedAt: Timestamp.optional(),
  finishedAt: Timestamp.optional(),
  usage: strict({
    cpuSeconds: z.number().min(0),
    peakMemoryBytes: z.int().min(0),
    wallSeconds: z.number().min(0),
    readBytes: z.int().min(0).optional(),
    writeBytes: z.int().min(0).optional(),
    gpuSeconds: z.number().min(0).optional(),
  }).optional(),
});
export type OpExecutionStatus = z.infer<typeof OpExecutionStatus>;

/**
 * The status as the schema accepts it: reasons made CamelCase-safe and messages cut to
 * their limits. Reasons and messages come from pods, Slurm and errors; the controller
 * fits every status before writing it, so that no write is refused for ever.
 */
export function fitExecutionStatus(status: OpExecutionStatus): OpExecutionStatus {
  const out: OpExecutionStatus = { ...status };
  if (out.reason !== undefined) out.reason = asReason(out.reason, STATUS_REASON_MAX);
  if (out.message !== undefined) out.message = truncated(out.message, STATUS_MESSAGE_MAX);
  if (out.conditions !== undefined) out.conditions = fitConditions(out.conditions);
  if (out.stages !== undefined) {
    out.stages = out.stages.map((stage) => ({
      ...stage,
      ...(stage.reason === undefined ? {} : { reason: asReason(stage.reason, STATUS_REASON_MAX) }),
      ...(stage.message === undefined ? {} : { message: truncated(stage.message, STATUS_MESSAGE_MAX) }),
    }));
  }
  return out;
}

export const OpExecution = withRules(resource("OpExecution", OpExecutionSpec, OpExecutionStatus), [
  {
    cel: "!has(self.metadata.name) || self.metadata.name.size() <= 63",
    message: "must be at most 63 characters: it labels pods and Slurm jobs",
    fieldPath: ".metadata.name",
    holds: (e) => e.metadata.name === undefined || e.metadata.name.length <= 63,
  },
]);
export type OpExecution = z.infer<typeof OpExecution>;
