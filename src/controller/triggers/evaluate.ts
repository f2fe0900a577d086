/**
 * Triggers, level-based: from a task, its executions and what the file system shows
 * now, which executions should exist. Nothing is remembered between calls: a file
 * already handled is one that some execution lists in spec.trigger.files, a schedule
 * slot already handled is one whose execution exists (names are derived from the
 * trigger's identity, names.ts). So a restart neither loses nor repeats a trigger.
 *
 * Baseline: files and schedule slots older than the task itself are not triggers
 * (ODOP's "new file" semantics): restarting `odop run` on a folder of old snapshots
 * does not reprocess them.
 */
import { Cron } from "croner";
import { parseDuration } from "../../api/duration.ts";
import { type ExecutionPhase, TERMINAL_PHASES, type TRIGGER_REASONS } from "../../api/opexecution.ts";
import type { OpExecution } from "../../api/opexecution.ts";
import type { OpTask } from "../../api/optask.ts";
import type { FileInfo, FileProbe } from "../../agent/file-probe.ts";

export type TriggerReason = (typeof TRIGGER_REASONS)[number];

export type Creation = {
  /** What makes this execution unique among the task's executions. */
  identity: string;
  reason: TriggerReason;
  files?: string[];
  upstream?: string[];
  time?: number;
  /** Create it already DepFailed, with this message (an upstream failed). */
  depFailed?: string;
};

export type TriggerContext = {
  task: OpTask;
  createdAtMs: number;
  /** All executions of this task. */
  executions: readonly OpExecution[];
  /** Executions of the tasks this one runs after (after triggers only). */
  upstream: readonly OpExecution[];
  upstreamTasks: ReadonlyMap<string, OpTask>;
  now: number;
  /** The main application has ended: flush partial batches, create no periodic runs. */
  draining: boolean;
  files: FileProbe;
};

export type TriggerOutcome = {
  create: Creation[];
  /** Look again after this long even if nothing is reported. */
  recheckAfterMs?: number;
  /** One line for `kubectl get` / the live table. */
  summary: string;
};

/** A file must be this quiet (and closed) before it counts: it was created and may be reopened. */
export const FILE_QUIET_MS = 100;
/** How often file triggers look again while something is not yet settled. */
export const FILE_RECHECK_MS = 200;

export function evaluateTrigger(ctx: TriggerContext): TriggerOutcome {
  const t = ctx.task.spec.trigger;
  if (t.fileIn !== undefined) return fileIn(ctx, t.fileIn);
  if (t.fileUpdated !== undefined) return fileUpdated(ctx, t.fileUpdated);
  if (t.schedule !== undefined) return schedule(ctx, t.schedule);
  if (t.after !== undefined) return after(ctx, t.after);
  if (t.idle !== undefined) return idle(ctx, t.idle);
  return { create: [], summary: "manual" };
}

/**
 * When each file was last handed to an execution (that execution's creation time). A
 * file written again after that — the same snapshot name in the next run of a
 * simulation — is new again. Creation times have one-second resolution, hence the slack.
 */
function consumedFiles(executions: readonly OpExecution[]): Map<string, number> {
  const at = new Map<string, number>();
  for (const e of executions) {
    const created = Date.parse(e.metadata.creationTimestamp ?? "") || 0;
    for (const f of e.spec.trigger.files ?? []) at.set(f, Math.max(at.get(f) ?? 0, created));
  }
  return at;
}

const CREATION_RESOLUTION_MS = 1000;

/**
 * File times come from the kernel's coarse clock, which lags the real time by up to a
 * timer tick (1–10 ms): a file written a moment after its task was created, right after
 * a second began, can carry an mtime just before the task's creationTimestamp (seconds,
 * rounded down). Files that much older still count as new.
 */
const FILE_CLOCK_SLACK_MS = 20;

function handled(consumed: ReadonlyMap<string, number>, f: FileInfo): boolean {
  const at = consumed.get(f.path);
  return at !== undefined && f.mtimeMs <= at + CREATION_RESOLUTION_MS;
}

function fileIn(ctx: TriggerContext, t: NonNullable<OpTask["spec"]["trigger"]["fileIn"]>): TriggerOutcome {
  const summary = `fileIn ${t.path}/${t.pattern}${t.batchSize > 1 ? ` ×${t.batchSize}` : ""}`;
  const consumed = consumedFiles(ctx.executions);
  const fresh = ctx.files.list(t.path, t.pattern).filter((f) => f.mtimeMs >= ctx.createdAtMs - FILE_CLOCK_SLACK_MS && !handled(consumed, f));
  if (fresh.length === 0) return { create: [], summary };
  // Files still being written (modified just now) are not looked up in /proc: the scan
  // of every process's open files is only paid for files that look finished.
  const quiet = fresh.filter((f) => ctx.now - f.mtimeMs >= FILE_QUIET_MS);
  const open = quiet.length > 0 ? ctx.files.openForWriting() : new Set<string>();
  const ready = quiet.filter((f) => !open.has(f.path));
  const unsettled = ready.length < fresh.length;
  ready.sort((a, b) => a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path));
  const create: Creation[] = [];
  let i = 0;
  for (; i + t.batchSize <= ready.length; i += t.batchSize) create.push(fileBatch(ready.slice(i, i + t.batchSize), ctx.now));
  const rest = ready.slice(i);
  let recheckAfterMs = unsettled ? FILE_RECHECK_MS : undefined;
  if (rest.length > 0) {
    const timeoutMs = t.batchTimeout === undefined ? undefined : parseDuration(t.batchTimeout);
    const waited = ctx.now - Math.min(...rest.map((f) => f.mtimeMs));
    if (ctx.draining || (timeoutMs !== undefined && waited >= timeoutMs)) create.push(fileBatch(rest, ctx.now));
    else if (timeoutMs !== undefined) recheckAfterMs = Math.min(recheckAfterMs ?? Infinity, timeoutMs - waited);
  }
  return { create, summary, ...(recheckAfterMs === undefined ? {} : { recheckAfterMs }) };
}

function fileBatch(files: FileInfo[], now: number): Creation {
  const paths = files.map((f) => f.path);
  // The versions (mtimes) are part of the identity: a file written again is another input.
  return { identity: `fileIn:${files.map((f) => `${f.path}@${f.mtimeMs}`).join("\n")}`, reason: "FileIn", files: paths, time: now };
}

function fileUpdated(ctx: TriggerContext, t: NonNullable<OpTask["spec"]["trigger"]["fileUpdated"]>): TriggerOutcome {
  const summary = `fileUpdated ${t.path}`;
  const info = ctx.files.stat(t.path);
  if (info === undefined || info.mtimeMs < ctx.createdAtMs - FILE_CLOCK_SLACK_MS) return { create: [], summary };
  const identity = `fileUpdated:${t.path}@${info.mtimeMs}`;
  const settleMs = t.settleSeconds * 1000;
  const quietFor = ctx.now - info.mtimeMs;
  if (quietFor < settleMs) return { create: [], summary, recheckAfterMs: settleMs - quietFor };
  if (ctx.files.openForWriting().has(t.path)) return { create: [], summary, recheckAfterMs: FILE_RECHECK_MS };
  return { create: [{ identity, reason: "FileUpdated", files: [t.path], time: ctx.now }], summary };
}

function schedule(ctx: TriggerContext, t: NonNullable<OpTask["spec"]["trigger"]["schedule"]>): TriggerOutcome {
  if (t.every !== undefined) {
    const every = parseDuration(t.every) ?? Infinity;
    const summary = `every ${t.every}`;
    const k = Math.floor((ctx.now - ctx.createdAtMs) / every);
    const next = ctx.createdAtMs + (k + 1) * every;
    const recheckAfterMs = next - ctx.now;
    if (k < 1 || ctx.draining) return { create: [], summary, recheckAfterMs };
    const slot = ctx.createdAtMs + k * every;
    return { create: [{ identity: `schedule:${slot}`, reason: "Schedule", time: slot }], summary, recheckAfterMs };
  }
  const cron = new Cron(t.cron ?? "", { paused: true, ...(t.timeZone === undefined ? {} : { timezone: t.timeZone }) });
  const summary = `cron ${t.cron ?? ""}`;
  const recheckAfterMs = cron.msToNext(new Date(ctx.now)) ?? undefined;
  const previous = cron.previousRuns(1, new Date(ctx.now))[0]?.getTime();
  const create: Creation[] =
    previous === undefined || previous < ctx.createdAtMs || ctx.draining
      ? []
      : [{ identity: `schedule:${previous}`, reason: "Schedule", time: previous }];
  return { create, summary, ...(recheckAfterMs === undefined ? {} : { recheckAfterMs }) };
}

const SUCCESS: ReadonlySet<ExecutionPhase> = new Set(["Succeeded", "Skipped"]);
const FAILURE: ReadonlySet<ExecutionPhase> = new Set(["Failed", "DepFailed", "Cancelled"]);

function after(ctx: TriggerContext, t: NonNullable<OpTask["spec"]["trigger"]["after"]>): TriggerOutcome {
  const summary = `after ${t.tasks.join(",")}`;
  const create: Creation[] = [];
  for (const up of ctx.upstream) {
    const phase = up.status?.phase;
    if (phase === undefined || !TERMINAL_PHASES.has(phase)) continue;
    const created = Date.parse(up.metadata.creationTimestamp ?? "");
    if (Number.isFinite(created) && created < ctx.createdAtMs) continue;
    const name = `${up.metadata.namespace ?? "default"}/${up.metadata.name ?? ""}`;
    const identity = `after:${name}`;
    const matches = t.when === "Completed" || (t.when === "Succeeded" ? SUCCESS.has(phase) : FAILURE.has(phase));
    if (matches) {
      const files = publishedFiles(ctx.upstreamTasks.get(up.spec.taskRef.name));
      create.push({ identity, reason: "After", upstream: [name], ...(files.length === 0 ? {} : { files }), time: ctx.now });
    } else if (t.when === "Succeeded" && FAILURE.has(phase)) {
      create.push({ identity, reason: "After", upstream: [name], depFailed: `upstream execution ${name} ended ${phase}`, time: ctx.now });
    }
  }
  return { create, summary };
}

/** The local files an upstream task publishes: they become the downstream's trigger files. */
function publishedFiles(task: OpTask | undefined): string[] {
  const out: string[] = [];
  for (const o of task?.spec.stages?.publish?.outputs ?? []) {
    const to = o.to.startsWith("file://") ? o.to.slice("file://".length) : o.to;
    if (!to.startsWith("/")) continue;
    out.push(to.endsWith("/") ? `${to}${o.from.split("/").filter(Boolean).at(-1) ?? ""}` : to);
  }
  return out;
}

function idle(ctx: TriggerContext, t: NonNullable<OpTask["spec"]["trigger"]["idle"]>): TriggerOutcome {
  const summary = "idle";
  if (ctx.draining) return { create: [], summary };
  const active = ctx.executions.filter((e) => !TERMINAL_PHASES.has(e.status?.phase ?? "Pending")).length;
  if (active >= ctx.task.spec.policy.concurrency) return { create: [], summary };
  const newest = Math.max(-Infinity, ...ctx.executions.map((e) => Date.parse(e.metadata.creationTimestamp ?? "") || -Infinity));
  const interval = t.minInterval === undefined ? 0 : (parseDuration(t.minInterval) ?? 0);
  if (ctx.now - newest < interval) return { create: [], summary, recheckAfterMs: interval - (ctx.now - newest) };
  const identity = `idle:${ctx.executions.length + 1}:${Number.isFinite(newest) ? newest : 0}`;
  return { create: [{ identity, reason: "Idle", time: ctx.now }], summary };
}
