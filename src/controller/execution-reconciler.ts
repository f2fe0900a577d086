/**
 * The execution reconciler: drives one OpExecution through its phases.
 *
 *   Pending → Scheduled → Configuring → Running ⇄ Paused → Publishing → Succeeded
 *   and Failed, Cancelled, Skipped, DepFailed; a failed attempt with retries left and a
 *   preempted execution go back to Pending.
 *
 * Level-based: each pass re-reads the execution, its task and what the backend says of
 * the current stage, and moves it on. The status is written *before* a stage is started
 * (write-ahead), and starting a stage is idempotent per attempt, so a crash anywhere
 * leads, on the next pass, to the same stage of the same attempt — never to a second
 * run of it, never to a lost one.
 *
 * The scheduler's decisions (start here, pause, resume, requeue, cancel) arrive through
 * the DecisionBox and are applied here, so one execution is only ever written by one
 * worker at a time (the queue guarantees it).
 */
import { existsSync, statSync } from "node:fs";
import type { Logger } from "pino";
import { formatCpuset } from "../api/cpuset.ts";
import { parseDuration } from "../api/duration.ts";
import {
  type ExecutionPhase,
  fitExecutionStatus,
  OPEXECUTION_CONDITIONS,
  type OpExecution,
  type OpExecutionStatus,
  type StageName,
  TERMINAL_PHASES,
} from "../api/opexecution.ts";
import type { OpTask } from "../api/optask.ts";
import type { Backend, StageRef, StageState } from "../backends/types.ts";
import type { EventType, ObjectRef, Store } from "../store/types.ts";
import type { Clock } from "./clock.ts";
import { rfc3339, setCondition } from "./conditions.ts";
import type { DecisionBox } from "./decisions.ts";
import type { Notifier } from "./notifier.ts";
import { type Planner, StagePlanError, stagesOf } from "./stage-plans.ts";
import { TASK_LABEL, taskOwner } from "./task-owner.ts";
import type { UsageTracker } from "./usage.ts";

export type ReconcileResult = { requeueAfterMs?: number };

export type ExecutionReconcilerDeps = {
  store: Store;
  backend: Backend;
  planner: Planner;
  clock: Clock;
  log: Logger;
  decisions: DecisionBox;
  notifier: Notifier;
  usage: UsageTracker;
  /** The task as the caller's watch last saw it; the store is read when it has none. */
  cachedTask?: (namespace: string, name: string) => OpTask | undefined;
  /**
   * The execution as the caller's cache holds it (its watch, and what this reconciler
   * wrote); the store is read when it has none or says it may be stale (after a conflict).
   */
  cachedExecution?: (namespace: string, name: string) => OpExecution | undefined;
  /** Told of every object this reconciler wrote (the newest version the caller can cache). */
  onWritten?: (execution: OpExecution) => void;
};

type Status = OpExecutionStatus;
type StageStatus = NonNullable<Status["stages"]>[number];

const STAGE_PHASE: Record<StageName, ExecutionPhase> = { configure: "Configuring", run: "Running", publish: "Publishing" };
/** How often a running stage is looked at when the backend says nothing (Backend.observeEveryMs). */
const OBSERVE_EVERY_MS = 1000;
/** The reason a backend gives a stage its cluster preempted (Slurm PREEMPTED). */
const PREEMPTED = "Preempted";

type EventSink = { record(ref: ObjectRef, type: EventType, reason: string, message: string): void };

export class ExecutionReconciler {
  readonly #d: ExecutionReconcilerDeps;
  readonly #pendingEvents = new Set<Promise<void>>();
  readonly #sink: EventSink = {
    record: (ref, type, reason, message) => {
      const written = this.#d.store.recordEvent(ref, type, reason, message).catch((error: unknown) => this.#d.log.warn({ err: error, reason }, "could not record an event"));
      this.#pendingEvents.add(written);
      void written.then(() => this.#pendingEvents.delete(written));
    },
  };

  constructor(deps: ExecutionReconcilerDeps) {
    this.#d = deps;
  }

  /** Waits for the events recorded so far (the engine's stop does, so that none is lost). */
  async flushEvents(): Promise<void> {
    while (this.#pendingEvents.size > 0) await Promise.all([...this.#pendingEvents]);
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const { store } = this.#d;
    const execution = this.#d.cachedExecution?.(namespace, name) ?? (await store.get("OpExecution", namespace, name));
    if (execution === undefined) {
      this.#d.decisions.forget(`${namespace}/${name}`);
      return {};
    }
    const taskName = execution.spec.taskRef.name;
    const task = this.#d.cachedTask?.(namespace, taskName) ?? (await store.get("OpTask", namespace, taskName));
    const pass = new Pass(this.#d, this.#sink, execution, task);
    let result: ReconcileResult;
    try {
      result = await pass.run();
    } catch (error) {
      // An outage of the backend (slurmrestd, the API server) shows on the execution, then the pass is retried.
      const reason = isTransient(error) ? (error as { reason?: unknown }).reason : undefined;
      if (typeof reason === "string") {
        pass.backendUnreachable(reason, (error as Error).message);
        await pass.write().catch((writeError: unknown) => this.#d.log.warn({ err: writeError }, "could not record the backend outage"));
      }
      throw error;
    }
    pass.backendReachable();
    await pass.write();
    const ended = pass.ended;
    // After the terminal phase is recorded: a crash in between leaves the pod, never the phase.
    if (ended !== undefined) await this.#d.backend.cleanup?.(ended.ref, ended.succeeded);
    return result;
  }
}

/** One reconcile of one execution: reads, decides, acts, and writes status once at the end (and before starting a stage). */
class Pass {
  readonly #d: ExecutionReconcilerDeps;
  #execution: OpExecution;
  readonly #task: OpTask | undefined;
  readonly #key: string;
  readonly #log: Logger;
  #status: Status;
  #written: string;
  #events: { type: "Normal" | "Warning"; reason: string; message: string }[] = [];

  readonly #events$: EventSink;

  constructor(deps: ExecutionReconcilerDeps, events: EventSink, execution: OpExecution, task: OpTask | undefined) {
    this.#d = deps;
    this.#events$ = events;
    this.#execution = execution;
    this.#task = task;
    this.#key = `${execution.metadata.namespace ?? "default"}/${execution.metadata.name ?? ""}`;
    this.#log = deps.log.child({ kind: "OpExecution", namespace: execution.metadata.namespace, name: execution.metadata.name });
    this.#status = structuredClone(execution.status ?? {});
    this.#written = JSON.stringify(this.#status);
  }

  get #now(): number {
    return this.#d.clock.now();
  }

  get #observeEveryMs(): number {
    return this.#d.backend.observeEveryMs ?? OBSERVE_EVERY_MS;
  }

  async run(): Promise<ReconcileResult> {
    const phase = this.#status.phase;
    if (phase !== undefined && TERMINAL_PHASES.has(phase)) return {};
    await this.#adopt();
    if (phase === undefined) {
      this.#transition("Pending", "Created", `created by ${this.#execution.spec.trigger.reason} trigger`);
      this.#event("Normal", "Created", `execution of ${this.#execution.spec.taskRef.name}, trigger ${this.#execution.spec.trigger.reason}`);
    }
    const action = this.#execution.spec.action;
    if (action === "Stop" || action === "Skip") {
      await this.#stopCurrent();
      const [to, reason] = action === "Stop" ? (["Cancelled", "StoppedByUser"] as const) : (["Skipped", "SkippedByUser"] as const);
      this.#finish(to, reason, `spec.action is ${action}`);
      return {};
    }
    const task = this.#task;
    if (task === undefined) {
      await this.#stopCurrent();
      this.#finish("Failed", "TaskNotFound", `OpTask ${this.#execution.spec.taskRef.name} does not exist`);
      return {};
    }
    if (this.#deadlinePassed(task)) {
      await this.#stopCurrent();
      this.#finish("Cancelled", "DeadlineExceeded", `not finished within policy.deadline ${task.spec.policy.deadline ?? ""}`);
      return {};
    }
    const handled = await this.#applyDecision(task);
    if (handled !== undefined) return handled;
    return this.#advance(task);
  }

  /**
   * An execution a person created has no owner: it gets the owner reference and label
   * the task reconciler gives the ones it creates, so that deleting the task
   * garbage-collects it and its pods, and `kubectl get opexec -l odop.io/task=<name>`
   * finds it. (OwnerReferencesPermissionEnforcement allows it only with delete on
   * opexecutions.) Done here, once per execution, rather than in a task reconcile that
   * would update thousands at once.
   */
  async #adopt(): Promise<void> {
    const task = this.#task;
    const uid = task?.metadata.uid;
    const meta = this.#execution.metadata;
    if (task === undefined || uid === undefined || uid === "" || meta.deletionTimestamp !== undefined) return;
    if ((meta.ownerReferences ?? []).some((o) => o.kind === "OpTask")) return;
    const { status: _status, ...rest } = this.#execution;
    this.#execution = await this.#d.store.update({
      ...rest,
      metadata: { ...meta, labels: { ...meta.labels, [TASK_LABEL]: task.metadata.name ?? "" }, ownerReferences: [...(meta.ownerReferences ?? []), taskOwner(task, uid)] },
    });
    this.#d.onWritten?.(this.#execution);
    this.#log.info({ task: task.metadata.name }, "execution adopted");
  }

  /** Moves the phase machine as far as it can go now. */
  async #advance(task: OpTask): Promise<ReconcileResult> {
    for (;;) {
      const phase = this.#status.phase ?? "Pending";
      switch (phase) {
        case "Pending": {
          if (this.#execution.spec.action === "Pause") return {};
          const notBefore = Date.parse(this.#status.nextAttemptAt ?? "");
          if (Number.isFinite(notBefore) && notBefore > this.#now) return { requeueAfterMs: notBefore - this.#now };
          if (upToDate(task)) {
            this.#finish("Skipped", "UpToDate", "every product is newer than every dependency");
            return {};
          }
          return {}; // waits for the scheduler's start decision
        }
        case "Scheduled": {
          const first = stagesOf(task)[0] ?? "run";
          const attempt = (this.#status.attempts ?? 0) + 1;
          this.#status.attempts = attempt;
          delete this.#status.nextAttemptAt;
          this.#status.startedAt ??= rfc3339(this.#now);
          this.#status.stages = [];
          this.#enterStage(first, attempt);
          if (attempt === 1) this.#d.notifier.started(task, this.#execution, this.#status);
          await this.write();
          continue;
        }
        case "Configuring":
        case "Running":
        case "Publishing":
          return this.#followStage(task, stageOfPhase(phase));
        case "Paused":
          return this.#followPaused(task);
        case "Succeeded":
        case "Failed":
        case "Cancelled":
        case "Skipped":
        case "DepFailed":
          return {};
      }
    }
  }

  /** Starts the current stage if it is not started, and reacts to how it is doing. */
  async #followStage(task: OpTask, stage: StageName): Promise<ReconcileResult> {
    const attempt = this.#status.attempts ?? 1;
    const ref = this.#ref(stage, attempt);
    let state = await this.#d.backend.observe(ref);
    if (state.state === "absent") {
      try {
        const plan = this.#d.planner.plan(stage, task, this.#execution, attempt, this.#status.cores ?? []);
        state = await this.#d.backend.start(plan);
        this.#event("Normal", "StageStarted", `${stage} started on cores ${this.#status.cpuset ?? ""} (attempt ${attempt})`);
      } catch (error) {
        // An outage (API server, agent) is no failure of the attempt: retry the pass later.
        if (isTransient(error)) throw error;
        const reason = error instanceof StagePlanError ? error.reason : "StageStartFailed";
        return this.#failAttempt(task, stage, reason, `cannot start ${stage}: ${(error as Error).message}`, undefined);
      }
    }
    this.#recordPids(state);
    switch (state.state) {
      case "running":
      case "absent": {
        if (stage !== "run") return { requeueAfterMs: this.#observeEveryMs };
        return this.#enforceTimeLimit(task, ref);
      }
      case "paused": // paused outside odop's knowledge (kill -STOP): keep watching
        return { requeueAfterMs: this.#observeEveryMs };
      case "stopped":
        return this.#failAttempt(task, stage, "StageStopped", `${stage} was stopped`, undefined);
      case "lost":
        // Make sure nothing of the lost attempt still runs before another one starts
        // (a pod on a node that went silent may come back); a transient error retries later.
        await this.#d.backend.stop(ref);
        if (state.reason === PREEMPTED) {
          // Preemption is no failure of the operation: back to Pending, no retry spent.
          this.#endStage(stage, "Failed", undefined, PREEMPTED, state.message);
          this.#backToPending(PREEMPTED, state.message, undefined);
          return {};
        }
        return this.#failAttempt(task, stage, state.reason ?? "StageLost", state.message, undefined);
      case "exited":
        if (state.exitCode !== 0) {
          const message = exitMessage(stage, state.exitCode);
          return this.#failAttempt(task, stage, state.reason ?? `${capitalise(stage)}Failed`, state.message === undefined ? message : `${message}: ${state.message}`, state);
        }
        return this.#stageSucceeded(task, stage, state);
    }
  }

  async #stageSucceeded(task: OpTask, stage: StageName, state: Extract<StageState, { state: "exited" }>): Promise<ReconcileResult> {
    this.#endStage(stage, "Succeeded", 0, undefined);
    if (stage === "run") this.#recordUsage(stage, state);
    if (stage === "run") {
      const missing = (task.spec.products ?? []).filter((p) => !existsSync(p));
      if (missing.length > 0) {
        return this.#failAttempt(task, stage, "ProductsMissing", `run succeeded but did not produce ${missing.join(", ")}`, undefined);
      }
    }
    const stages = stagesOf(task);
    const next = stages[stages.indexOf(stage) + 1];
    if (next === undefined) {
      this.#finish("Succeeded", "Succeeded", `all stages succeeded (attempt ${this.#status.attempts ?? 1})`);
      return {};
    }
    this.#enterStage(next, this.#status.attempts ?? 1);
    await this.write();
    return this.#followStage(task, next);
  }

  async #followPaused(task: OpTask): Promise<ReconcileResult> {
    const action = this.#execution.spec.action;
    if (this.#status.reason === "PausedByUser" && action === "Run") {
      const stage = this.#pausedStage();
      if (stage !== undefined) {
        await this.#d.backend.resume(this.#ref(stage, this.#status.attempts ?? 1), this.#status.cores ?? []);
        this.#resumeStage(stage, "ResumedByUser", "spec.action is Run");
        return this.#followStage(task, stage);
      }
    }
    // A paused stage may still have ended (it was about to exit when paused, or it was killed).
    const stage = this.#pausedStage();
    if (stage === undefined) return {};
    const state = await this.#d.backend.observe(this.#ref(stage, this.#status.attempts ?? 1));
    if (state.state === "exited" || state.state === "lost" || state.state === "stopped") {
      this.#resumeStage(stage, "Ended", "the stage ended while paused");
      return this.#followStage(task, stage);
    }
    return { requeueAfterMs: this.#observeEveryMs * 5 };
  }

  /** Applies a user pause or a scheduler decision; returns a result when it decided the pass. */
  async #applyDecision(task: OpTask): Promise<ReconcileResult | undefined> {
    const phase = this.#status.phase ?? "Pending";
    const running = phase === "Configuring" || phase === "Running" || phase === "Publishing";
    if (this.#execution.spec.action === "Pause" && running) {
      const stage = stageOfPhase(phase);
      await this.#d.backend.pause(this.#ref(stage, this.#status.attempts ?? 1));
      this.#pauseStage(stage, "PausedByUser", "spec.action is Pause");
      return {};
    }
    const decision = this.#d.decisions.take(this.#key);
    if (decision === undefined) return undefined;
    switch (decision.type) {
      case "start":
        if (phase !== "Pending" || this.#execution.spec.action === "Pause") return undefined;
        this.#status.node = decision.node;
        this.#status.cores = decision.cores;
        this.#status.cpuset = formatCpuset(decision.cores);
        this.#transition("Scheduled", "Placed", `node ${decision.node}, cores ${this.#status.cpuset}`);
        this.#event("Normal", "Scheduled", `placed on ${decision.node}, cores ${this.#status.cpuset}`);
        return undefined;
      case "pause":
        if (!running) return undefined;
        await this.#d.backend.pause(this.#ref(stageOfPhase(phase), this.#status.attempts ?? 1));
        this.#pauseStage(stageOfPhase(phase), "CoresReclaimed", "the main application needs its cores back");
        return {};
      case "resume": {
        const stage = this.#pausedStage();
        if (phase !== "Paused" || this.#status.reason !== "CoresReclaimed" || stage === undefined) return undefined;
        this.#status.cores = decision.cores;
        this.#status.cpuset = formatCpuset(decision.cores);
        await this.#d.backend.resume(this.#ref(stage, this.#status.attempts ?? 1), decision.cores);
        this.#resumeStage(stage, "CoresFree", `cores ${this.#status.cpuset} are idle again`);
        return this.#followStage(task, stage);
      }
      case "requeue":
      case "cancel": {
        if (!running && phase !== "Paused") return undefined;
        await this.#stopCurrent();
        if (decision.type === "cancel") {
          this.#finish("Cancelled", "Preempted", "the main application needed the cores (policy.onContention: cancel)");
        } else {
          this.#backToPending("Preempted", "the main application needed the cores (policy.onContention: requeue)", undefined);
        }
        return {};
      }
    }
  }

  #enforceTimeLimit(task: OpTask, ref: StageRef): Promise<ReconcileResult> | ReconcileResult {
    const limit = task.spec.requirements?.time === undefined ? undefined : parseDuration(task.spec.requirements.time);
    if (limit === undefined) return { requeueAfterMs: this.#observeEveryMs };
    const stage = this.#stageStatus("run");
    const started = Date.parse(stage?.startedAt ?? "");
    if (!Number.isFinite(started)) return { requeueAfterMs: this.#observeEveryMs };
    const ran = this.#now - started - (stage?.pausedSeconds ?? 0) * 1000;
    if (ran < limit) return { requeueAfterMs: Math.min(limit - ran, this.#observeEveryMs) };
    return (async () => {
      await this.#d.backend.stop(ref);
      return this.#failAttempt(task, "run", "TimeLimit", `run exceeded requirements.time ${task.spec.requirements?.time ?? ""}`, undefined);
    })();
  }

  /** A stage failed: retry (back to Pending after a backoff) or fail the execution. */
  #failAttempt(task: OpTask, stage: StageName, reason: string, message: string, state: StageState | undefined): ReconcileResult {
    const exitCode = state?.state === "exited" ? state.exitCode : undefined;
    this.#endStage(stage, "Failed", exitCode, reason, message);
    if (stage === "run" && state?.state === "exited") this.#recordUsage(stage, state);
    const retries = task.spec.policy.retries;
    const failures = this.#status.retries ?? 0;
    if (retries !== undefined && failures < retries.limit) {
      const backoff = (parseDuration(retries.backoff) ?? 10_000) * 2 ** failures;
      this.#status.retries = failures + 1;
      this.#event("Warning", "Retrying", `${message}; retry ${failures + 1} of ${retries.limit} in ${Math.round(backoff / 1000)}s`);
      this.#backToPending(reason, `${message}; retrying`, this.#now + backoff);
      return { requeueAfterMs: backoff };
    }
    this.#finish("Failed", reason, message);
    return {};
  }

  #backToPending(reason: string, message: string, notBefore: number | undefined): void {
    delete this.#status.node;
    delete this.#status.cores;
    delete this.#status.cpuset;
    if (notBefore === undefined) delete this.#status.nextAttemptAt;
    else this.#status.nextAttemptAt = rfc3339(notBefore);
    this.#transition("Pending", reason, message);
    this.#event("Normal", reason, message);
  }

  /** Set when this pass ended the execution: what its last attempt was, and whether it succeeded. */
  ended: { ref: StageRef; succeeded: boolean } | undefined;

  #finish(phase: ExecutionPhase, reason: string, message: string): void {
    if ((this.#status.attempts ?? 0) > 0) this.ended = { ref: this.#ref("run", this.#status.attempts ?? 1), succeeded: phase === "Succeeded" };
    this.#status.finishedAt = rfc3339(this.#now);
    this.#transition(phase, reason, message);
    this.#event(phase === "Succeeded" || phase === "Skipped" ? "Normal" : "Warning", phase, message);
    this.#d.notifier.finished(this.#task, this.#execution, this.#status);
    this.#d.usage.forget(this.#key);
  }

  #transition(phase: ExecutionPhase, reason: string, message: string): void {
    const now = rfc3339(this.#now);
    const s = this.#status;
    s.phase = phase;
    s.reason = reason;
    s.message = message;
    const generation = this.#execution.metadata.generation;
    const terminal = TERMINAL_PHASES.has(phase);
    const active = phase === "Configuring" || phase === "Running" || phase === "Publishing";
    const placed = phase !== "Pending" && !terminal;
    s.conditions = setCondition(s.conditions, { type: OPEXECUTION_CONDITIONS.Scheduled, status: placed ? "True" : "False", reason: placed ? "Placed" : reason, message: placed ? `node ${s.node ?? ""}, cores ${s.cpuset ?? ""}` : message }, now, generation);
    s.conditions = setCondition(s.conditions, { type: OPEXECUTION_CONDITIONS.Running, status: active ? "True" : "False", reason: active ? phase : reason, message }, now, generation);
    s.conditions = setCondition(s.conditions, { type: OPEXECUTION_CONDITIONS.Complete, status: terminal ? "True" : "False", reason: terminal ? reason : "InProgress", message }, now, generation);
    s.observedGeneration = generation ?? 0;
  }

  #enterStage(stage: StageName, attempt: number): void {
    const stages = (this.#status.stages ?? []).filter((s) => s.name !== stage);
    stages.push({ name: stage, phase: "Running", attempt, startedAt: rfc3339(this.#now) });
    this.#status.stages = stages;
    this.#transition(STAGE_PHASE[stage], `${capitalise(stage)}Started`, `${stage} (attempt ${attempt}) on cores ${this.#status.cpuset ?? ""}`);
  }

  #endStage(stage: StageName, phase: "Succeeded" | "Failed", exitCode: number | undefined, reason: string | undefined, message?: string): void {
    const s = this.#stageStatus(stage);
    if (s === undefined) return;
    s.phase = phase;
    s.finishedAt = rfc3339(this.#now);
    if (exitCode !== undefined) s.exitCode = exitCode;
    if (reason !== undefined) s.reason = reason;
    if (message !== undefined) s.message = message;
    if (s.pausedAt !== undefined) this.#addPaused(s);
  }

  #pauseStage(stage: StageName, reason: string, message: string): void {
    const s = this.#stageStatus(stage);
    if (s !== undefined) {
      s.phase = "Paused";
      s.pausedAt = rfc3339(this.#now);
    }
    this.#transition("Paused", reason, message);
    this.#event("Normal", "Paused", `${stage}: ${message}`);
  }

  #resumeStage(stage: StageName, reason: string, message: string): void {
    const s = this.#stageStatus(stage);
    if (s !== undefined) {
      s.phase = "Running";
      this.#addPaused(s);
    }
    this.#transition(STAGE_PHASE[stage], reason, message);
    this.#event("Normal", "Resumed", `${stage}: ${message}`);
  }

  #addPaused(s: StageStatus): void {
    const since = Date.parse(s.pausedAt ?? "");
    if (Number.isFinite(since)) s.pausedSeconds = (s.pausedSeconds ?? 0) + Math.max(0, this.#now - since) / 1000;
    delete s.pausedAt;
  }

  #pausedStage(): StageName | undefined {
    return this.#status.stages?.find((s) => s.phase === "Paused")?.name;
  }

  #stageStatus(stage: StageName): StageStatus | undefined {
    return this.#status.stages?.find((s) => s.name === stage);
  }

  #ref(stage: StageName, attempt: number): StageRef {
    return { execution: this.#key, stage, attempt };
  }

  async #stopCurrent(): Promise<void> {
    const phase = this.#status.phase;
    const stage = phase === "Paused" ? this.#pausedStage() : phase === undefined ? undefined : stageOfPhaseOrUndefined(phase);
    if (stage !== undefined) await this.#d.backend.stop(this.#ref(stage, this.#status.attempts ?? 1));
  }

  #deadlinePassed(task: OpTask): boolean {
    const deadline = task.spec.policy.deadline === undefined ? undefined : parseDuration(task.spec.policy.deadline);
    if (deadline === undefined) return false;
    const created = Date.parse(this.#execution.metadata.creationTimestamp ?? "");
    return Number.isFinite(created) && this.#now - created > deadline;
  }

  /** Where the stage runs, whatever state it is in (a short stage may have ended already). */
  #recordPids(state: StageState): void {
    const live = state.state === "running" || state.state === "paused";
    const pids = live ? state.pids.slice(0, 16) : this.#status.backend?.pids;
    const slurmJobId = state.slurmJobId ?? this.#status.backend?.slurmJobId;
    const previousPods = this.#status.backend?.pods ?? [];
    const pods = state.pod === undefined || previousPods.includes(state.pod) ? previousPods : [...previousPods, state.pod].slice(-16);
    const workspace = this.#d.planner.workspace(this.#execution);
    this.#status.backend = {
      kind: this.#d.backend.kind,
      ...(pids === undefined ? {} : { pids }),
      ...(pods.length === 0 ? {} : { pods }),
      ...(slurmJobId === undefined ? {} : { slurmJobId }),
      ...(workspace === undefined ? {} : { workspace }),
    };
    if (live) this.#d.usage.track(this.#key, state.pids);
  }

  #recordUsage(stage: StageName, state: Extract<StageState, { state: "exited" }>): void {
    const s = this.#stageStatus(stage);
    const started = Date.parse(s?.startedAt ?? "");
    const wall = Number.isFinite(started) ? Math.max(0, (this.#now - started) / 1000 - (s?.pausedSeconds ?? 0)) : 0;
    const tracked = this.#d.usage.peak(this.#key);
    this.#status.usage = {
      cpuSeconds: state.cpuSeconds ?? tracked.cpuSeconds,
      peakMemoryBytes: tracked.peakRssBytes,
      wallSeconds: Math.round(wall * 1000) / 1000,
    };
  }

  /** Records that the backend cannot be reached (condition BackendReachable=False, with the error's reason). */
  backendUnreachable(reason: string, message: string): void {
    const s = this.#status;
    const wasDown = s.conditions?.some((c) => c.type === OPEXECUTION_CONDITIONS.BackendReachable && c.status === "False" && c.reason === reason) ?? false;
    s.conditions = setCondition(s.conditions, { type: OPEXECUTION_CONDITIONS.BackendReachable, status: "False", reason, message }, rfc3339(this.#now), this.#execution.metadata.generation);
    if (!wasDown) this.#event("Warning", reason, message);
  }

  /** The backend answered this pass: a BackendReachable=False condition turns True (none is added otherwise). */
  backendReachable(): void {
    const s = this.#status;
    if (!s.conditions?.some((c) => c.type === OPEXECUTION_CONDITIONS.BackendReachable && c.status === "False")) return;
    s.conditions = setCondition(s.conditions, { type: OPEXECUTION_CONDITIONS.BackendReachable, status: "True", reason: "Reachable", message: "the backend answers again" }, rfc3339(this.#now), this.#execution.metadata.generation);
    this.#event("Normal", "BackendReachable", "the backend answers again");
  }

  #event(type: "Normal" | "Warning", reason: string, message: string): void {
    this.#events.push({ type, reason, message });
  }

  /** Writes status if it changed since the last write, then the events collected. */
  async write(): Promise<void> {
    this.#status = fitExecutionStatus(this.#status);
    const json = JSON.stringify(this.#status);
    if (json !== this.#written) {
      // Later writes of this pass build on this one (its resourceVersion).
      this.#execution = await this.#d.store.updateStatus({ ...this.#execution, status: this.#status });
      this.#written = json;
      this.#d.onWritten?.(this.#execution);
      this.#log.info({ phase: this.#status.phase, reason: this.#status.reason }, "execution status written");
    }
    const events = this.#events;
    this.#events = [];
    const ref = {
      kind: "OpExecution" as const,
      namespace: this.#execution.metadata.namespace,
      name: this.#execution.metadata.name ?? "",
      uid: this.#execution.metadata.uid,
    };
    // Events are best effort and off the reconcile's path (as client-go's recorder): their
    // writes must not slow a pass down; ExecutionReconciler.flushEvents() waits for them.
    for (const e of events) this.#events$.record(ref, e.type, e.reason, e.message);
  }
}

function stageOfPhaseOrUndefined(phase: ExecutionPhase): StageName | undefined {
  if (phase === "Configuring") return "configure";
  if (phase === "Running") return "run";
  if (phase === "Publishing") return "publish";
  return undefined;
}

function stageOfPhase(phase: ExecutionPhase): StageName {
  return stageOfPhaseOrUndefined(phase) ?? "run";
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function exitMessage(stage: StageName, code: number): string {
  if (code > 128 && code < 160) return `${stage} was killed by signal ${code - 128}${code === 137 ? " (SIGKILL: out of memory?)" : ""} (exit code ${code})`;
  return `${stage} exited with code ${code}`;
}

/** depio's skip: every product exists and is newer than every dependency. */
function upToDate(task: OpTask): boolean {
  const products = task.spec.products ?? [];
  if (products.length === 0) return false;
  const mtime = (p: string): number | undefined => {
    try {
      return statSync(p).mtimeMs;
    } catch {
      return undefined;
    }
  };
  const productTimes = products.map(mtime);
  if (productTimes.some((t) => t === undefined)) return false;
  const oldestProduct = Math.min(...(productTimes as number[]));
  const newestDependency = Math.max(-Infinity, ...(task.spec.dependencies ?? []).map((d) => mtime(d) ?? Infinity));
  return oldestProduct > newestDependency;
}

/** Errors that say "try again later" (backends and stores mark them transient). */
function isTransient(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { transient?: unknown }).transient === true;
}
