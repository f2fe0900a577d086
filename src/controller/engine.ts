/**
 * The controller core, assembled: watches feed a de-duplicating queue, workers run the
 * task and execution reconcilers, and a sampling loop feeds the node window, measures
 * executions and runs a scheduler round every interval. The embedded mode (`odop run`)
 * runs it with the embedded store, the local backend and the in-process sampler; the
 * Kubernetes controller will run it with its store and backends.
 */
import type { Logger } from "pino";
import { type OpExecution, TERMINAL_PHASES } from "../api/opexecution.ts";
import type { BackendKind, OpTask } from "../api/optask.ts";
import { quantityValue, toUnits } from "../api/quantity.ts";
import type { OpNodeStatus } from "../api/opnode.ts";
import type { NodeSample } from "../api/sample.ts";
import { slurmJobSelector } from "../backends/slurm/nodes.ts";
import type { Backend } from "../backends/types.ts";
import { schedule } from "../scheduler/scheduler.ts";
import type { ActiveExecution, PendingExecution } from "../scheduler/types.ts";
import { ConflictError } from "../store/errors.ts";
import type { Store, Unsubscribe } from "../store/types.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { rfc3339 } from "./conditions.ts";
import { DecisionBox } from "./decisions.ts";
import { ExecutionReconciler, type ReconcileResult } from "./execution-reconciler.ts";
import type { Notifier } from "./notifier.ts";
import { WorkQueue } from "./queue.ts";
import type { Planner } from "./stage-plans.ts";
import { TaskReconciler } from "./task-reconciler.ts";
import type { NodeSource } from "./node-source.ts";
import { OpNodeWriter } from "./opnode-writer.ts";
import type { FileProbe } from "../agent/file-probe.ts";
import { UsageTracker } from "./usage.ts";

export type EngineOptions = {
  store: Store;
  backend: Backend;
  planner: Planner;
  clock: Clock;
  log: Logger;
  notifier: Notifier;
  files: FileProbe;
  /** The nodes this engine harvests (embedded mode: this machine, sampled in-process). */
  nodes: NodeSource;
  /** Roots of odop's own processes are added to it by the engine, through `usage`. */
  usage?: UsageTracker;
  sampleIntervalMs?: number;
  workers?: number;
  /** Folders and files to watch for trigger changes (fs.watch); polling covers the rest. */
  watch?: (paths: string[], onChange: () => void) => Unsubscribe;
  /** Whether this engine sees the trigger files (false for a cluster controller). */
  seesTriggerFiles?: boolean;
  /** Least time between two OpNode status writes of one node (default 10 s); see OpNodeWriter. */
  nodeStatusIntervalMs?: number;
  /** Told about every reconcile (metrics). */
  onReconcile?: (kind: "OpTask" | "OpExecution", seconds: number, ok: boolean) => void;
};

const TASK = "t|";
const EXEC = "x|";
const ACTIVE_PHASES = new Set(["Scheduled", "Configuring", "Running", "Paused", "Publishing"]);
/** Delay that coalesces the changes that call for a scheduler round between samples. */
const ROUND_DELAY_MS = 50;
/** Delay that coalesces the task reconciles its executions' changes ask for. */
const TASK_COALESCE_MS = 250;
/** Delay that coalesces the bursts of fs.watch events a file being written produces. */
const FILE_EVENT_DELAY_MS = 100;

export class Engine {
  readonly #o: EngineOptions;
  readonly #queue: WorkQueue;
  readonly #decisions = new DecisionBox();
  readonly usage: UsageTracker;
  readonly #tasks = new Map<string, OpTask>();
  readonly #executions = new Map<string, OpExecution>();
  /** The resourceVersion of each execution's last write by this engine, until its watch event comes back. */
  readonly #ownWrites = new Map<string, string>();
  /** Executions whose cached copy a conflict showed stale. */
  readonly #stale = new Set<string>();
  readonly #taskReconciler: TaskReconciler;
  readonly #executionReconciler: ExecutionReconciler;
  readonly #opNodes: OpNodeWriter;
  readonly #unsubscribe: Unsubscribe[] = [];
  #draining = false;
  #tick: TimerHandle | undefined;
  #workers: Promise<void>[] = [];
  #inFlight = 0;
  #stopped = false;
  #unwatchFiles: Unsubscribe | undefined;
  #roundSoon: TimerHandle | undefined;
  /** When the last scheduler round ended, and how long it took. */
  #lastRound = { at: 0, ms: 0 };
  #lastTickAt: number | undefined;

  constructor(options: EngineOptions) {
    this.#o = options;
    this.#queue = new WorkQueue({ clock: options.clock, baseDelayMs: 200, maxDelayMs: 30_000 });
    this.usage = options.usage ?? new UsageTracker();
    const backends = new Set<BackendKind>([options.backend.kind]);
    this.#taskReconciler = new TaskReconciler({
      store: options.store,
      clock: options.clock,
      log: options.log,
      files: options.files,
      draining: () => this.#draining,
      backends,
      seesTriggerFiles: options.seesTriggerFiles ?? true,
      // File triggers look every interval: reading the cache spares a copy of every execution each time.
      executionsIn: (namespace) => [...this.#executions.values()].filter((e) => (e.metadata.namespace ?? "default") === namespace),
    });
    this.#opNodes = new OpNodeWriter({
      store: options.store,
      clock: options.clock,
      log: options.log,
      ...(options.nodeStatusIntervalMs === undefined ? {} : { minIntervalMs: options.nodeStatusIntervalMs }),
    });
    this.#executionReconciler = new ExecutionReconciler({
      store: options.store,
      backend: options.backend,
      planner: options.planner,
      clock: options.clock,
      log: options.log,
      decisions: this.#decisions,
      notifier: options.notifier,
      usage: this.usage,
      // Tasks change rarely: the watch's copy spares a GET per execution reconcile.
      cachedTask: (namespace, name) => this.#tasks.get(`${namespace}/${name}`),
      cachedExecution: (namespace, name) => this.#cachedExecution(`${namespace}/${name}`),
      onWritten: (e) => this.#wrote(e),
    });
  }

  start(): void {
    const { store, backend } = this.#o;
    this.#unsubscribe.push(
      store.watch("OpTask", (e) => {
        const key = keyOf(e.object);
        if (e.type === "DELETED") this.#tasks.delete(key);
        else this.#tasks.set(key, e.object);
        this.#queue.add(TASK + key);
        this.#rewatchFiles();
      }),
      store.watch("OpExecution", (e) => {
        const key = keyOf(e.object);
        if (e.type === "DELETED") {
          this.#executions.delete(key);
          this.#ownWrites.delete(key);
          this.#queue.add(EXEC + key);
        } else {
          this.#executions.set(key, e.object);
          // The echo of this engine's own write brings nothing to reconcile.
          if (!this.#echoOfOwnWrite(key, e.object)) this.#queue.add(EXEC + key);
        }
        // New work, or cores just freed: decide now rather than at the next sample.
        const phase = e.object.status?.phase;
        if (e.type === "DELETED" || phase === undefined || phase === "Pending" || TERMINAL_PHASES.has(phase)) this.#requestRound();
        const ns = e.object.metadata.namespace ?? "default";
        // The task's counts and triggers follow its executions; thousands of them changing
        // at once make one task reconcile every TASK_COALESCE_MS, not one per change.
        this.#queue.addAfter(`${TASK}${ns}/${e.object.spec.taskRef.name}`, TASK_COALESCE_MS);
        for (const t of this.#tasks.values()) {
          if (t.metadata.namespace === ns && t.spec.trigger.after?.tasks.includes(e.object.spec.taskRef.name)) this.#queue.add(TASK + keyOf(t));
        }
      }),
      backend.onChange((ref) => this.#queue.add(EXEC + ref.execution)),
    );
    const workers = this.#o.workers ?? 4;
    for (let i = 0; i < workers; i += 1) this.#workers.push(this.#work());
    this.#scheduleTick(0);
  }

  /** The main application has ended: flush partial batches, create no periodic runs. */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const key of this.#tasks.keys()) this.#queue.add(TASK + key);
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Nothing left to do: draining, every execution ended, nothing queued or running. */
  get drained(): boolean {
    if (!this.#draining || this.#inFlight > 0 || !this.#queue.idle) return false;
    for (const e of this.#executions.values()) if (!TERMINAL_PHASES.has(e.status?.phase ?? "Pending")) return false;
    return true;
  }

  /** Keys waiting in the work queue (metrics). */
  get queueDepth(): number {
    return this.#queue.length;
  }

  /** Executions known, by phase (metrics). */
  phaseCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const e of this.#executions.values()) counts.set(e.status?.phase ?? "Pending", (counts.get(e.status?.phase ?? "Pending") ?? 0) + 1);
    return counts;
  }

  executions(): OpExecution[] {
    return [...this.#executions.values()];
  }

  tasks(): OpTask[] {
    return [...this.#tasks.values()];
  }

  /** When the sampling loop last completed a pass (liveness). */
  get lastTickAt(): number | undefined {
    return this.#lastTickAt;
  }

  get lastSample(): NodeSample | undefined {
    return this.#o.nodes.latest();
  }

  /** Stops the loops. With `interrupt`, running stages are stopped and their executions go back to Pending (reason Interrupted). */
  async stop(options: { interrupt: boolean }): Promise<void> {
    this.#stopped = true;
    this.#tick?.cancel();
    this.#roundSoon?.cancel();
    this.#unwatchFiles?.();
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#queue.shutDown();
    await Promise.all(this.#workers);
    await this.#executionReconciler.flushEvents();
    if (options.interrupt) await this.#interruptAll();
    await this.#o.notifier.flush();
  }

  // ------------------------------------------------------------------ the execution cache

  /**
   * The execution a reconcile starts from: the watch's copy, or the newer one this
   * engine wrote. Undefined (the reconciler reads the store) when there is none, or
   * after a conflict said the copy was stale.
   */
  #cachedExecution(key: string): OpExecution | undefined {
    if (this.#stale.delete(key)) return undefined;
    return this.#executions.get(key);
  }

  /**
   * A reconcile wrote `e`: the cache takes it at once (the watch may bring it later, or
   * may have brought it already), and its echo will not be reconciled again. An older
   * watch event arriving after it puts the older copy back; a pass that starts from it
   * meets a conflict and reads the store (#stale).
   */
  #wrote(e: OpExecution): void {
    const key = keyOf(e);
    this.#executions.set(key, e);
    const version = e.metadata.resourceVersion;
    if (version !== undefined) this.#ownWrites.set(key, version);
  }

  /** Whether a watch event carries exactly the version this engine wrote last (only that one: never someone else's change). */
  #echoOfOwnWrite(key: string, object: OpExecution): boolean {
    if (this.#ownWrites.get(key) !== object.metadata.resourceVersion) return false;
    this.#ownWrites.delete(key);
    return true;
  }

  // ------------------------------------------------------------------ workers

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      this.#inFlight += 1;
      const started = performance.now();
      const kind = key.startsWith(TASK) ? "OpTask" : "OpExecution";
      try {
        const result = await this.#reconcile(key);
        this.#queue.forget(key);
        if (result.requeueAfterMs !== undefined) this.#queue.addAfter(key, result.requeueAfterMs);
        this.#o.onReconcile?.(kind, (performance.now() - started) / 1000, true);
      } catch (error) {
        // A conflict says the cached copy was stale: the next pass reads the store.
        if (error instanceof ConflictError && key.startsWith(EXEC)) this.#stale.add(key.slice(EXEC.length));
        const delay = this.#queue.addRateLimited(key);
        this.#o.log.warn({ key, err: error, retryInMs: delay }, "reconcile failed; retrying");
        this.#o.onReconcile?.(kind, (performance.now() - started) / 1000, false);
      } finally {
        this.#inFlight -= 1;
        this.#queue.done(key);
      }
    }
  }

  #reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = "default", name = ""] = key.slice(2).split("/");
    return key.startsWith(TASK) ? this.#taskReconciler.reconcile(namespace, name) : this.#executionReconciler.reconcile(namespace, name);
  }

  // ------------------------------------------------------- sampling and scheduling

  #scheduleTick(delay: number): void {
    if (this.#stopped) return;
    this.#tick = this.#o.clock.after(delay, () => void this.#onTick());
  }

  async #onTick(): Promise<void> {
    try {
      await this.#o.nodes.refresh();
      const opNodes = this.#o.nodes.opNodes?.(rfc3339(this.#o.clock.now()));
      if (opNodes !== undefined) void this.#opNodes.write(this.#withRunning(opNodes));
      this.usage.sample();
      // A round asked for by a change may have run a moment ago: one a sample interval is enough.
      if (this.#o.clock.now() - this.#lastRound.at >= (this.#o.sampleIntervalMs ?? 1000) / 2) this.#round();
      // File triggers are looked at every interval: fs.watch is only a hint.
      for (const t of this.#tasks.values()) {
        if (t.spec.trigger.fileIn !== undefined || t.spec.trigger.fileUpdated !== undefined) this.#queue.add(TASK + keyOf(t));
      }
    } catch (error) {
      this.#o.log.warn({ err: error }, "sampling round failed");
    } finally {
      this.#lastTickAt = this.#o.clock.now();
      this.#scheduleTick(this.#o.sampleIntervalMs ?? 1000);
    }
  }

  /**
   * A scheduler round soon (coalescing bursts of changes), on the newest samples. A round
   * looks at every execution and node: rounds asked for in a burst are spaced by at least
   * twice the last round's duration, so that they take at most a third of the process.
   */
  #requestRound(): void {
    if (this.#roundSoon !== undefined || this.#stopped) return;
    const spacing = Math.max(ROUND_DELAY_MS, this.#lastRound.at + 2 * this.#lastRound.ms - this.#o.clock.now());
    this.#roundSoon = this.#o.clock.after(spacing, () => {
      this.#roundSoon = undefined;
      if (this.#stopped) return;
      try {
        this.#round();
      } catch (error) {
        this.#o.log.warn({ err: error }, "scheduler round failed");
      }
    });
  }

  /** One scheduler round over what the caches hold now. */
  #round(): void {
    const started = performance.now();
    try {
      this.#roundOnce();
    } finally {
      this.#lastRound = { at: this.#o.clock.now(), ms: performance.now() - started };
    }
  }

  #roundOnce(): void {
    const now = this.#o.clock.now();
    const nodes = this.#o.nodes.views(now);
    if (nodes.length === 0) return; // nothing sampled yet
    const active: ActiveExecution[] = [];
    const pending: PendingExecution[] = [];
    const concurrency = new Map<string, number>();
    for (const t of this.#tasks.values()) concurrency.set(keyOf(t), t.spec.policy.concurrency);
    for (const [key, e] of this.#executions) {
      const phase = e.status?.phase ?? "Pending";
      if (phase !== "Pending" && !ACTIVE_PHASES.has(phase)) continue; // ended: nothing to place or hold
      const task = this.#tasks.get(`${e.metadata.namespace ?? "default"}/${e.spec.taskRef.name}`);
      if (task === undefined) continue;
      const { key: taskKey, cores, memoryBytes, selector } = placementOf(task);
      if (ACTIVE_PHASES.has(phase) && e.status?.node !== undefined) {
        active.push({
          key,
          task: taskKey,
          node: e.status.node,
          cores: e.status.cores ?? [],
          priority: e.spec.options?.priority ?? task.spec.policy.priority,
          onContention: task.spec.policy.onContention,
          pausedByScheduler: phase === "Paused" && e.status.reason === "CoresReclaimed",
          pausedByUser: phase === "Paused" && e.status.reason !== "CoresReclaimed",
          memoryBytes,
        });
      } else if (phase === "Pending" && e.spec.action === "Run" && !this.#decisions.has(key)) {
        const notBefore = Date.parse(e.status?.nextAttemptAt ?? "");
        if (Number.isFinite(notBefore) && notBefore > now) continue;
        pending.push({
          key,
          task: taskKey,
          priority: e.spec.options?.priority ?? task.spec.policy.priority,
          createdAt: Date.parse(e.metadata.creationTimestamp ?? "") || now,
          cores,
          memoryBytes,
          ...selector,
        });
      }
    }
    for (const d of this.#decisions.heldStarts()) {
      const e = this.#executions.get(d.key);
      const task = e === undefined ? undefined : this.#tasks.get(`${e.metadata.namespace ?? "default"}/${e.spec.taskRef.name}`);
      if (task === undefined) continue;
      active.push({ key: d.key, task: keyOf(task), node: d.node, cores: d.cores, priority: task.spec.policy.priority, onContention: task.spec.policy.onContention, pausedByScheduler: false, pausedByUser: false, memoryBytes: placementOf(task).memoryBytes });
    }
    for (const decision of schedule({ nodes, active, pending, concurrency })) {
      this.#decisions.put(decision);
      this.#queue.add(EXEC + decision.key);
      this.#o.log.info({ decision }, "scheduler decision");
    }
  }

  // ------------------------------------------------------------------ helpers

  #rewatchFiles(): void {
    const watch = this.#o.watch;
    if (watch === undefined || this.#stopped) return;
    const paths = [...this.#tasks.values()].flatMap((t) => [t.spec.trigger.fileIn?.path, t.spec.trigger.fileUpdated?.path]).filter((p): p is string => p !== undefined);
    this.#unwatchFiles?.();
    // A file being written fires many events: they are coalesced into one look per FILE_EVENT_DELAY_MS.
    this.#unwatchFiles = watch(paths, () => {
      for (const t of this.#tasks.values()) if (t.spec.trigger.fileIn !== undefined || t.spec.trigger.fileUpdated !== undefined) this.#queue.addAfter(TASK + keyOf(t), FILE_EVENT_DELAY_MS);
    });
  }

  /** OpNode statuses with the executions this engine runs on each node (what `kubectl get opnode` shows as RUNNING). */
  #withRunning(opNodes: { name: string; status: OpNodeStatus }[]): { name: string; status: OpNodeStatus }[] {
    const byNode = new Map<string, string[]>();
    for (const e of this.#executions.values()) {
      const node = e.status?.node;
      if (node === undefined || !ACTIVE_PHASES.has(e.status?.phase ?? "")) continue;
      byNode.set(node, [...(byNode.get(node) ?? []), keyOf(e)]);
    }
    return opNodes.map(({ name, status }) => {
      const running = (byNode.get(name) ?? []).sort();
      return { name, status: { ...status, running: running.length, ...(running.length === 0 ? {} : { executions: running.slice(0, 256) }) } };
    });
  }

  async #interruptAll(): Promise<void> {
    const { store, backend, clock } = this.#o;
    for (const e of await store.list("OpExecution")) {
      const phase = e.status?.phase;
      if (phase === undefined || !ACTIVE_PHASES.has(phase)) continue;
      const attempt = e.status?.attempts ?? 1;
      for (const stage of ["configure", "run", "publish"] as const) {
        await backend.stop({ execution: keyOf(e), stage, attempt });
      }
      const now = new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
      const status = structuredClone(e.status ?? {});
      delete status.node;
      delete status.cores;
      delete status.cpuset;
      status.stages = [];
      status.phase = "Pending";
      status.reason = "Interrupted";
      status.message = "odop run was stopped; the execution starts again on the next run";
      // The interrupted attempt stays counted (it ran), but it is no failure: retries are untouched.
      await store.updateStatus({ ...e, status });
      await store.recordEvent({ kind: "OpExecution", namespace: e.metadata.namespace, name: e.metadata.name ?? "" }, "Normal", "Interrupted", `stopped at ${now} with odop run`);
    }
  }
}

function keyOf(o: { metadata: { namespace?: string | undefined; name?: string | undefined } }): string {
  return `${o.metadata.namespace ?? "default"}/${o.metadata.name ?? ""}`;
}

/** Whole cores to ask for: requirements.cpu, else what the task was seen to use, else one. */
export function coresOf(task: OpTask): { min: number; max: number } {
  const cpu = task.spec.requirements?.cpu;
  const min = Math.max(1, cpu?.min === undefined ? 1 : Number(toUnits(quantityValue(cpu.min))));
  const learned = task.status?.profile === undefined ? undefined : Math.ceil(task.status.profile.peakCores);
  const max = cpu?.max !== undefined ? Number(toUnits(quantityValue(cpu.max))) : (learned ?? min);
  return { min, max: Math.max(min, max) };
}

/**
 * Where an execution of the task may go: the nodes target.nodeSelector names (where the
 * main application runs), and next to its target Slurm job when it names one.
 */
export function selectorOf(task: OpTask): { nodeSelector?: Record<string, string> } {
  const selector = { ...task.spec.target?.nodeSelector, ...slurmJobSelector(task) };
  return Object.keys(selector).length === 0 ? {} : { nodeSelector: selector };
}

type Placement = { key: string; cores: { min: number; max: number }; memoryBytes: number; selector: { nodeSelector?: Record<string, string> } };
/** What a round needs of a task, computed once per version of it (a round looks at every execution). */
const placements = new WeakMap<OpTask, Placement>();

function placementOf(task: OpTask): Placement {
  let p = placements.get(task);
  if (p === undefined) {
    p = { key: keyOf(task), cores: coresOf(task), memoryBytes: memoryOf(task), selector: selectorOf(task) };
    placements.set(task, p);
  }
  return p;
}

/** Memory to reserve: requirements.memory.min, else the learned peak, else nothing. */
export function memoryOf(task: OpTask): number {
  const min = task.spec.requirements?.memory?.min;
  if (min !== undefined) return Number(toUnits(quantityValue(min)));
  return task.status?.profile?.peakMemoryBytes ?? 0;
}
