/**
 * The task reconciler: turns an OpTask's trigger into OpExecutions, and keeps the task's
 * status (readiness, counts, last result, learned profile).
 *
 * get → if gone, return → check the spec can run here → create the executions the
 * trigger calls for → write status once, only if it changed.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { fitExecutionStatus, TERMINAL_PHASES, type OpExecution } from "../api/opexecution.ts";
import { type BackendKind, fitTaskStatus, OPTASK_CONDITIONS, type OpTask, type OpTaskStatus } from "../api/optask.ts";
import { formatPath, validateObject } from "../api/validate.ts";
import { AlreadyExistsError } from "../store/errors.ts";
import type { Store } from "../store/types.ts";
import type { Clock } from "./clock.ts";
import { rfc3339, setCondition } from "./conditions.ts";
import type { ReconcileResult } from "./execution-reconciler.ts";
import { executionName } from "./names.ts";
import { TASK_LABEL, taskOwner } from "./task-owner.ts";
import { evaluateTrigger } from "./triggers/evaluate.ts";
import type { FileProbe } from "../agent/file-probe.ts";

export type TaskReconcilerDeps = {
  store: Store;
  clock: Clock;
  log: Logger;
  files: FileProbe;
  /** True once the main application has ended: triggers flush and stop. */
  draining: () => boolean;
  /** Backends this controller can run; a task that needs another one is not Ready. */
  backends: ReadonlySet<BackendKind>;
  /**
   * Whether this controller sees the files that fileIn and fileUpdated watch. The
   * embedded mode does; a cluster controller does not (node agents will watch them).
   */
  seesTriggerFiles?: boolean;
  /**
   * The executions of a namespace, from a cache the caller keeps current (the engine's,
   * fed by its watch): read-only, not copied. Without it the store is listed each time.
   */
  executionsIn?: (namespace: string) => readonly OpExecution[];
};


export class TaskReconciler {
  readonly #d: TaskReconcilerDeps;

  constructor(deps: TaskReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const { store, clock } = this.#d;
    const task = await store.get("OpTask", namespace, name);
    if (task === undefined) return {};
    const log = this.#d.log.child({ kind: "OpTask", namespace, name });
    const now = clock.now();
    const all = this.#d.executionsIn?.(namespace) ?? (await store.list("OpExecution", namespace));
    let executions = all.filter((e) => e.spec.taskRef.name === name);
    const status: OpTaskStatus = structuredClone(task.status ?? {});
    const generation = task.metadata.generation ?? 1;
    let result: ReconcileResult = {};

    const problem = this.#cannotRun(task);
    if (problem !== undefined) {
      status.conditions = setCondition(status.conditions, { type: OPTASK_CONDITIONS.Ready, status: "False", reason: "InvalidSpec", message: problem }, rfc3339(now), generation);
    } else if (task.spec.suspend) {
      status.conditions = setCondition(status.conditions, { type: OPTASK_CONDITIONS.Ready, status: "False", reason: "Suspended", message: "spec.suspend is true" }, rfc3339(now), generation);
    } else {
      const upstreamNames = new Set(task.spec.trigger.after?.tasks ?? []);
      const upstreamTasks = new Map<string, OpTask>();
      for (const n of upstreamNames) {
        const t = await store.get("OpTask", namespace, n);
        if (t !== undefined) upstreamTasks.set(n, t);
      }
      const outcome = evaluateTrigger({
        task,
        createdAtMs: Date.parse(task.metadata.creationTimestamp ?? "") || now,
        executions,
        upstream: all.filter((e) => upstreamNames.has(e.spec.taskRef.name)),
        upstreamTasks,
        now,
        draining: this.#d.draining(),
        files: this.#d.files,
      });
      status.trigger = outcome.summary;
      const existing = new Set(executions.map((e) => e.metadata.name));
      const maxRuns = task.spec.policy.maxRuns ?? Infinity;
      for (const creation of outcome.create) {
        const executionNameFor = executionName(name, creation.identity);
        if (existing.has(executionNameFor)) continue;
        if (executions.length >= maxRuns) break;
        const created = await this.#create(task, executionNameFor, creation, log);
        if (created !== undefined) {
          executions = [...executions, created];
          existing.add(executionNameFor);
          status.lastTriggerTime = rfc3339(creation.time ?? now);
        }
      }
      const missing = [...upstreamNames].filter((n) => !upstreamTasks.has(n));
      status.conditions = setCondition(
        status.conditions,
        missing.length > 0
          ? { type: OPTASK_CONDITIONS.Ready, status: "False", reason: "UpstreamMissing", message: `after.tasks names tasks that do not exist: ${missing.join(", ")}` }
          : { type: OPTASK_CONDITIONS.Ready, status: "True", reason: "Armed", message: outcome.summary },
        rfc3339(now),
        generation,
      );
      if (outcome.recheckAfterMs !== undefined) result = { requeueAfterMs: Math.max(1, outcome.recheckAfterMs) };
    }

    Object.assign(status, summarise(executions));
    status.observedGeneration = generation;
    const fitted = fitTaskStatus(status);
    if (JSON.stringify(fitted) !== JSON.stringify(task.status ?? {})) {
      await store.updateStatus({ ...task, status: fitted });
    }
    return result;
  }

  /** Why this task cannot run on this controller, or undefined. */
  #cannotRun(task: OpTask): string | undefined {
    // What the API server's CRD schema cannot check (a cron expression's values, say)
    // arrives here: it becomes Ready=False/InvalidSpec, never a crash loop.
    const checked = validateObject(task);
    if (!checked.ok) return checked.problems.slice(0, 3).map((p) => `${formatPath(p.path)}: ${p.message}`).join("; ");
    const fileTrigger = task.spec.trigger.fileIn !== undefined || task.spec.trigger.fileUpdated !== undefined;
    if (fileTrigger && this.#d.seesTriggerFiles === false) {
      return "fileIn and fileUpdated triggers are watched by node agents, which this controller does not have yet; use odop run on the node";
    }
    const wanted = task.spec.backend ?? (task.spec.target?.slurmJob !== undefined ? "slurm" : undefined);
    if (wanted !== undefined && !this.#d.backends.has(wanted)) {
      return `backend ${wanted} is not available here (this controller runs: ${[...this.#d.backends].join(", ")})`;
    }
    const run = task.spec.run;
    if (wanted === undefined && this.#d.backends.has("local") && !this.#d.backends.has("kubernetes") && run.command === undefined && run.script === undefined && run.module === undefined) {
      return "run.image needs the kubernetes backend; to run locally set run.command, run.script, or run.module and run.function";
    }
    return undefined;
  }

  async #create(task: OpTask, name: string, creation: ReturnType<typeof evaluateTrigger>["create"][number], log: Logger): Promise<OpExecution | undefined> {
    const { store, clock } = this.#d;
    const execution: OpExecution = {
      apiVersion: "odop.io/v1alpha1",
      kind: "OpExecution",
      metadata: {
        name,
        namespace: task.metadata.namespace ?? "default",
        labels: { [TASK_LABEL]: task.metadata.name ?? "" },
        ownerReferences: [taskOwner(task, task.metadata.uid ?? "")],
      },
      spec: {
        taskRef: { name: task.metadata.name ?? "" },
        executionId: randomUUID(),
        trigger: {
          reason: creation.reason,
          ...(creation.files === undefined ? {} : { files: creation.files }),
          ...(creation.upstream === undefined ? {} : { upstream: creation.upstream }),
          ...(creation.time === undefined ? {} : { time: rfc3339(creation.time) }),
        },
        action: "Run",
      },
    };
    try {
      let created = await store.create(execution);
      log.info({ execution: name, reason: creation.reason }, "execution created");
      if (creation.depFailed !== undefined) {
        const now = rfc3339(clock.now());
        created = await store.updateStatus({
          ...created,
          status: fitExecutionStatus({
            phase: "DepFailed",
            reason: "UpstreamFailed",
            message: creation.depFailed,
            finishedAt: now,
            conditions: setCondition(undefined, { type: "Complete", status: "True", reason: "UpstreamFailed", message: creation.depFailed }, now),
          }),
        });
        await store.recordEvent({ kind: "OpExecution", namespace: created.metadata.namespace, name }, "Warning", "DepFailed", creation.depFailed);
      }
      return created;
    } catch (error) {
      if (error instanceof AlreadyExistsError) return undefined;
      throw error;
    }
  }
}

/** Counts, last result and the learned profile, from the task's executions. */
function summarise(executions: readonly OpExecution[]): Partial<OpTaskStatus> {
  const out: Partial<OpTaskStatus> = {
    runs: executions.length,
    active: executions.filter((e) => !TERMINAL_PHASES.has(e.status?.phase ?? "Pending")).length,
    succeeded: executions.filter((e) => e.status?.phase === "Succeeded").length,
    failed: executions.filter((e) => e.status?.phase === "Failed" || e.status?.phase === "DepFailed").length,
  };
  const finished = executions
    .filter((e) => TERMINAL_PHASES.has(e.status?.phase ?? "Pending") && e.status?.finishedAt !== undefined)
    .sort((a, b) => (a.status?.finishedAt ?? "").localeCompare(b.status?.finishedAt ?? "") || (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
  const last = finished.at(-1);
  if (last !== undefined) {
    out.lastExecution = { name: last.metadata.name ?? "", phase: last.status?.phase ?? "", ...(last.status?.finishedAt === undefined ? {} : { finishedAt: last.status.finishedAt }) };
  }
  const measured = finished.filter((e) => e.status?.phase === "Succeeded" && e.status.usage !== undefined && e.status.usage.wallSeconds > 0);
  if (measured.length > 0) {
    const usages = measured.map((e) => e.status?.usage).filter((u) => u !== undefined);
    const cores = usages.map((u) => u.cpuSeconds / u.wallSeconds);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const round = (x: number) => Math.round(x * 1000) / 1000;
    out.profile = {
      runs: measured.length,
      avgCores: round(mean(cores)),
      peakCores: round(Math.max(...cores)),
      avgMemoryBytes: Math.round(mean(usages.map((u) => u.peakMemoryBytes))),
      peakMemoryBytes: Math.max(...usages.map((u) => u.peakMemoryBytes)),
      avgSeconds: round(mean(usages.map((u) => u.wallSeconds))),
      maxSeconds: round(Math.max(...usages.map((u) => u.wallSeconds))),
      updatedAt: measured.at(-1)?.status?.finishedAt ?? "",
    };
  }
  return out;
}
