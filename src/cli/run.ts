/**
 * `odop run PATH [--main-pid N | -- COMMAND...]`: the embedded mode. Loads OpTasks (and
 * OpExecutions) from PATH into the run's journalled store, launches or attaches to the
 * main application, and harvests this machine's idle cores until the main application
 * has ended and every execution has finished. Killed, it leaves stages running and the
 * next `odop run` of the same run re-adopts them; stopped with Ctrl-C, it stops the
 * running stages and keeps their executions for the next run.
 */
import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import pino from "pino";
import { parseDuration } from "../api/duration.ts";
import type { OpExecution } from "../api/opexecution.ts";
import type { OpTask } from "../api/optask.ts";
import { formatPath, validateObject } from "../api/validate.ts";
import { type MainSelector, Sampler } from "../agent/sampler.ts";
import { detectPriority, LocalBackend } from "../backends/local/local-backend.ts";
import { systemClock } from "../controller/clock.ts";
import { Engine } from "../controller/engine.ts";
import { executionName } from "../controller/names.ts";
import { notifierFor } from "../controller/notifier.ts";
import { StagePlanner } from "../controller/stage-plans.ts";
import { localFileProbe } from "../agent/file-probe.ts";
import { LocalNodeSource, onlyNode } from "../controller/node-source.ts";
import { UsageTracker } from "../controller/usage.ts";
import { watchPaths } from "../controller/watch-files.ts";
import { NodeWindow } from "../scheduler/window.ts";
import { loadNotifyKey, NOTIFY_KEY_ENV } from "../staging/notify.ts";
import { EmbeddedStore } from "../store/embedded.ts";
import { serveStore } from "../store/embedded-server.ts";
import { AlreadyExistsError } from "../store/errors.ts";
import type { Store } from "../store/types.ts";
import { liveTable, plainLines } from "./live-view.ts";
import { attach, launchOrAdopt, type MainApplication } from "./main-app.ts";
import { parseDocuments, readSources } from "./manifests.ts";
import { acquireLock, runNameFor, runPaths } from "./runs.ts";
import { type SlurmFlags, type SlurmParts, slurmParts } from "./slurm-setup.ts";
import { AgentNodeSource } from "../controller/ingest/agent-nodes.ts";
import { type IngestServer, startIngestServer } from "../controller/ingest/server.ts";
import { readFileSync } from "node:fs";

export type RunOptions = {
  mainPid?: number;
  run?: string;
  interval: string;
  hold: string;
  idleThreshold: string;
  busyThreshold: string;
  reclaim: string;
  notifyKeyFile?: string;
  table?: boolean;
  /** Where stages run: local processes (default) or Slurm jobs through slurmrestd. */
  backend?: string;
  /** host:port where node agents push samples; absent: this machine is sampled in-process only. */
  listen?: string;
  agentTokenFile?: string;
  staleAfter?: string;
  nodeStatusInterval?: string;
} & SlurmFlags;

type Out = NodeJS.WriteStream;

/** Exit codes: 0 all executions succeeded (or were skipped); 1 some failed; 2 bad input; 130 interrupted. */
export async function runCommand(path: string, command: readonly string[], options: RunOptions, out: Out, err: Out): Promise<number> {
  const intervalMs = parseDuration(options.interval);
  const holdMs = parseDuration(options.hold);
  if (intervalMs === undefined || holdMs === undefined) {
    err.write(`--interval and --hold take durations such as 1s or 500ms\n`);
    return 2;
  }
  const idleThreshold = Number(options.idleThreshold);
  const busyThreshold = Number(options.busyThreshold);
  if (!(idleThreshold >= 0 && idleThreshold <= busyThreshold && busyThreshold <= 1)) {
    err.write(`--idle-threshold and --busy-threshold are shares of a core with 0 ≤ idle ≤ busy ≤ 1 (got ${options.idleThreshold}, ${options.busyThreshold})\n`);
    return 2;
  }
  if (options.reclaim !== "raw" && options.reclaim !== "smoothed") {
    err.write(`--reclaim is raw or smoothed (got ${options.reclaim})\n`);
    return 2;
  }
  const reclaimOn: "raw" | "smoothed" = options.reclaim;
  const agents = agentSettings(options, process.env);
  if (typeof agents === "string") {
    err.write(`${agents}\n`);
    return 2;
  }
  const backendKind = options.backend ?? "local";
  if (backendKind !== "local" && backendKind !== "slurm") {
    err.write(`--backend is local or slurm (got ${backendKind}); the kubernetes backend runs in odop controller\n`);
    return 2;
  }
  if (options.mainPid !== undefined && command.length > 0) {
    err.write("give either --main-pid or a command after --, not both\n");
    return 2;
  }
  const manifests = await loadManifests(path, err);
  if (manifests === undefined) return 2;

  const paths = runPaths(options.run ?? runNameFor(path));
  let release: () => void;
  try {
    release = acquireLock(paths);
  } catch (error) {
    err.write(`${(error as Error).message}\n`);
    return 2;
  }
  mkdirSync(paths.executions, { recursive: true });
  const log = pino({ level: "info", redact: ["*.token", "*.key", "*.authorization"] }, pino.destination({ dest: paths.log, mkdir: true, sync: false }));
  const store = new EmbeddedStore({ folder: paths.store });
  const suspended = await apply(store, manifests);
  if (suspended.length > 0) err.write(`no longer in ${path}, suspended: ${suspended.join(", ")}\n`);

  let main: MainApplication | undefined;
  try {
    if (options.mainPid !== undefined) main = attach(options.mainPid);
    else if (command.length > 0) main = launchOrAdopt(command, paths.main, resolve(paths.root, "main"));
  } catch (error) {
    err.write(`${(error as Error).message}\n`);
    release();
    return 2;
  }
  const notifyKey = await loadNotifyKey({ env: process.env, ...(options.notifyKeyFile === undefined ? {} : { file: options.notifyKeyFile }) });
  const notifying = manifests.tasks.filter((t) => t.spec.stages?.publish?.notify !== undefined).map((t) => t.metadata.name);
  if (notifyKey === undefined && notifying.length > 0) {
    err.write(`warning: no notification key (ODOP_NOTIFY_KEY or --notify-key-file): notifications of ${notifying.join(", ")} go unsigned\n`);
  }

  const node = hostname();
  const usage = new UsageTracker();
  const planner = new StagePlanner({
    executionsRoot: paths.executions,
    odopCommand: [process.execPath, resolve(import.meta.dirname, "odop.ts")],
    baseEnv: withoutSecrets(process.env),
    secretsDir: paths.secrets,
    pythonPath: [process.cwd()],
  });
  const selector = mainSelector(main, manifests.tasks);
  const sampler = new Sampler({ node, main: () => selector, odopRoots: () => usage.roots() });
  let slurm: SlurmParts | undefined;
  if (backendKind === "slurm") {
    try {
      slurm = await slurmParts(options, process.env, { log, executionsRoot: paths.executions, planner });
    } catch (error) {
      err.write(`${(error as Error).message}\n`);
      release();
      return 2;
    }
  }
  const windowConfig = { holdMs, idleThreshold, busyThreshold, reclaimOn };
  const ownNodes = slurm?.nodes ?? new LocalNodeSource(new NodeWindow({ name: node, config: windowConfig }), () => sampler.sample());
  // With agents, their samples replace the in-process view node by node (this machine's too, when an agent runs here).
  const agentNodes = agents === undefined ? undefined : new AgentNodeSource({ watchFor: () => [], fallback: ownNodes, staleAfterMs: agents.staleAfterMs, window: windowConfig });
  let ingest: IngestServer | undefined;
  if (agents !== undefined && agentNodes !== undefined) {
    try {
      ingest = await startIngestServer({ host: agents.host, port: agents.port, token: agents.token, onPush: (push, at) => agentNodes.take(push, at), log: log.child({ component: "ingest" }) });
    } catch (error) {
      err.write(`--listen ${options.listen ?? ""}: cannot listen: ${(error as Error).message}\n`);
      release();
      return 2;
    }
  }
  const engine = new Engine({
    store,
    backend: slurm?.backend ?? new LocalBackend({ stateRoot: paths.executions, priority: await detectPriority() }),
    planner,
    clock: systemClock,
    log,
    notifier: notifierFor(store, notifyKey, log),
    files: localFileProbe,
    // The local backend runs stages on this machine: only its node may be placed on, whatever other agents report.
    nodes: agentNodes === undefined ? ownNodes : backendKind === "local" ? onlyNode(agentNodes, node) : agentNodes,
    usage,
    ...(agents === undefined ? {} : { nodeStatusIntervalMs: agents.nodeStatusIntervalMs }),
    sampleIntervalMs: intervalMs,
    watch: watchPaths,
  });
  const mainState = { text: main === undefined ? "none (harvesting until Ctrl-C)" : `pid ${main.pid} running` };
  const server = await serveStore(store, paths.socket, {
    summary: () => ({ run: paths.name, node, main: mainState.text, draining: engine.draining, sample: engine.lastSample }),
  });
  engine.start();
  out.write(`odop run ${paths.name}: ${manifests.tasks.length} task(s), state in ${paths.root}\n`);
  if (ingest !== undefined) out.write(`node agents: push to ${ingest.url} (POST /v1/samples)\n`);
  if (main?.launched === true) out.write(`main application: pid ${main.pid}, output in ${resolve(paths.root, "main")}.out/.err\n`);

  const view =
    options.table ?? out.isTTY
      ? liveTable({ run: paths.name, executions: () => engine.executions(), sample: () => engine.lastSample, main: () => mainState.text }, out)
      : plainLines(store, out);

  let mainExit: number | undefined;
  void main?.ended.then(
    (code) => {
      mainExit = code;
      mainState.text = `ended${code === undefined ? "" : ` (exit ${code})`}`;
      log.info({ code }, "main application ended");
      engine.drain();
    },
    (error: unknown) => {
      mainState.text = `failed to start: ${(error as Error).message}`;
      mainExit = 127;
      engine.drain();
    },
  );

  const interrupted = await new Promise<boolean>((done) => {
    let drainedOnce = false;
    const timer = setInterval(() => {
      if (!engine.drained) {
        drainedOnce = false;
        return;
      }
      if (drainedOnce) finish(false);
      drainedOnce = true;
    }, 300);
    const onSignal = () => finish(true);
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    function finish(signalled: boolean) {
      clearInterval(timer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      done(signalled);
    }
  });

  if (interrupted) err.write("\nstopping: running stages are stopped, their executions run again next time\n");
  await engine.stop({ interrupt: interrupted });
  slurm?.backend.close();
  slurm?.api.close();
  await ingest?.close();
  view();
  server.close();
  const executions = await store.list("OpExecution");
  await store.close();
  log.flush();
  release();
  return interrupted ? 130 : exitCode(executions, mainExit, out);
}

type Manifests = { tasks: OpTask[]; executions: OpExecution[] };

/** Reads and validates PATH; prints every problem and returns undefined when any. */
async function loadManifests(path: string, err: Out): Promise<Manifests | undefined> {
  const tasks: OpTask[] = [];
  const executions: OpExecution[] = [];
  const problems: string[] = [];
  for (const source of await readSources([path], () => Promise.resolve(""))) {
    if ("error" in source) {
      problems.push(`${source.source}: ${source.error}`);
      continue;
    }
    for (const doc of parseDocuments(source.source, source.text)) {
      for (const e of doc.syntaxErrors) problems.push(`${doc.source}:${e.line}: YAML: ${e.message}`);
      if (doc.syntaxErrors.length > 0) continue;
      const result = validateObject(doc.value);
      if (!result.ok) {
        for (const p of result.problems) problems.push(`${doc.source}:${doc.lineOf(p.path) ?? ""}: doc ${doc.index}: ${formatPath(p.path)}: ${p.message}`);
      } else if (result.object.kind === "OpTask") {
        tasks.push(result.object);
      } else if (result.object.kind === "OpExecution") {
        executions.push(result.object);
      } else {
        problems.push(`${doc.source}: doc ${doc.index}: OpNode objects are written by odop itself; remove it from ${path}`);
      }
    }
  }
  if (tasks.length === 0 && problems.length === 0) problems.push(`${path}: holds no OpTask`);
  for (const line of problems) err.write(`${line}\n`);
  return problems.length === 0 ? { tasks, executions } : undefined;
}

/**
 * kubectl apply, embedded: create what is new, update specs that changed; manual tasks
 * get one execution. Returns the tasks suspended because PATH no longer has them.
 */
async function apply(store: Store, manifests: Manifests): Promise<string[]> {
  for (const task of manifests.tasks) {
    const current = await store.get("OpTask", task.metadata.namespace, task.metadata.name ?? "");
    if (current === undefined) await store.create(task);
    else if (JSON.stringify(current.spec) !== JSON.stringify(task.spec)) await store.update({ ...current, spec: task.spec, metadata: { ...current.metadata, labels: task.metadata.labels ?? {} } });
    if (task.spec.trigger.manual !== undefined && !manifests.executions.some((e) => e.spec.taskRef.name === task.metadata.name)) {
      await createIfAbsent(store, {
        apiVersion: "odop.io/v1alpha1",
        kind: "OpExecution",
        metadata: { name: executionName(task.metadata.name ?? "", "manual:odop-run"), namespace: task.metadata.namespace ?? "default" },
        spec: { taskRef: { name: task.metadata.name ?? "" }, executionId: crypto.randomUUID(), trigger: { reason: "Manual" }, action: "Run" },
      });
    }
  }
  for (const execution of manifests.executions) await createIfAbsent(store, execution);
  // A task of an earlier run whose manifest is gone from PATH: suspend it (no new
  // executions; what runs goes on) rather than keep triggering it or delete its history.
  const wanted = new Set(manifests.tasks.map((t) => `${t.metadata.namespace ?? "default"}/${t.metadata.name ?? ""}`));
  const gone: string[] = [];
  for (const task of await store.list("OpTask")) {
    if (wanted.has(`${task.metadata.namespace ?? "default"}/${task.metadata.name ?? ""}`) || task.spec.suspend) continue;
    await store.update({ ...task, spec: { ...task.spec, suspend: true } });
    gone.push(task.metadata.name ?? "");
  }
  return gone;
}

async function createIfAbsent(store: Store, execution: OpExecution): Promise<void> {
  try {
    await store.create(execution);
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
  }
}

/** The main application's processes: the launched/attached one, else the first task's target.process. */
function mainSelector(main: MainApplication | undefined, tasks: readonly OpTask[]): MainSelector | undefined {
  if (main !== undefined) return { pids: [main.pid] };
  const target = tasks.find((t) => t.spec.target?.process !== undefined)?.spec.target?.process;
  if (target === undefined) return undefined;
  return {
    ...(target.pidFile === undefined ? {} : { pidFile: target.pidFile }),
    ...(target.command === undefined ? {} : { command: target.command }),
    ...(target.cgroup === undefined ? {} : { cgroup: target.cgroup }),
  };
}

function exitCode(executions: readonly OpExecution[], mainExit: number | undefined, out: Out): number {
  const failed = executions.filter((e) => e.status?.phase === "Failed" || e.status?.phase === "DepFailed");
  const counts = new Map<string, number>();
  for (const e of executions) counts.set(e.status?.phase ?? "Pending", (counts.get(e.status?.phase ?? "Pending") ?? 0) + 1);
  out.write(`done: ${[...counts].map(([p, n]) => `${n} ${p}`).join(", ") || "no executions"}${mainExit === undefined ? "" : `; main application exit ${mainExit}`}\n`);
  for (const e of failed) out.write(`failed: ${e.metadata.name ?? ""}: ${e.status?.reason ?? ""}: ${e.status?.message ?? ""}\n`);
  if (failed.length > 0) return 1;
  return mainExit !== undefined && mainExit !== 0 ? mainExit : 0;
}

/** The environment stages inherit, less odop's own secrets (the notification key). */
function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { [NOTIFY_KEY_ENV]: _key, ...rest } = env;
  return rest;
}

type AgentSettings = { host: string; port: number; token: () => string | undefined; staleAfterMs: number; nodeStatusIntervalMs: number };

/** --listen and its companions; a string is the problem to print. */
function agentSettings(options: RunOptions, env: NodeJS.ProcessEnv): AgentSettings | undefined | string {
  const listen = options.listen ?? env["ODOP_LISTEN"];
  if (listen === undefined) return undefined;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(listen);
  if (m === null || Number(m[2]) > 65_535) return `--listen (ODOP_LISTEN): "${listen}" is not host:port, e.g. 0.0.0.0:8470 or 127.0.0.1:8470`;
  const staleAfterMs = parseDuration(options.staleAfter ?? "10s");
  const nodeStatusIntervalMs = parseDuration(options.nodeStatusInterval ?? "10s");
  if (staleAfterMs === undefined) return `--stale-after: "${options.staleAfter ?? ""}" is not a duration, e.g. 10s`;
  if (nodeStatusIntervalMs === undefined) return `--node-status-interval: "${options.nodeStatusInterval ?? ""}" is not a duration, e.g. 10s`;
  const file = options.agentTokenFile ?? env["ODOP_AGENT_TOKEN_FILE"];
  const fixed = env["ODOP_AGENT_TOKEN"];
  if (file === undefined && (fixed === undefined || fixed === "")) return "--agent-token-file (ODOP_AGENT_TOKEN_FILE) or ODOP_AGENT_TOKEN: agents must authenticate: give their bearer token";
  const token = (): string | undefined => {
    if (file === undefined) return fixed;
    try {
      return readFileSync(file, "utf8").trim() || undefined;
    } catch {
      return undefined; // every push is refused (401) until the file is readable
    }
  };
  if (file !== undefined && token() === undefined) return `--agent-token-file ${file}: cannot read a token from it`;
  const host = (m[1] ?? "").replace(/^\[(.*)\]$/, "$1");
  return { host: host === "" ? "0.0.0.0" : host, port: Number(m[2]), token, staleAfterMs, nodeStatusIntervalMs };
}
