/**
 * `odop get`, `describe`, `logs`, and `pause|resume|stop|skip`, from another terminal.
 * They talk to the live `odop run` through its socket; when no run owns the run folder
 * they read its journal directly, and actions are written there for the next run.
 */
import { createReadStream, existsSync, readFileSync, statSync, watchFile, unwatchFile } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { type Action, type OpExecution, type StageName, STAGES } from "../api/opexecution.ts";
import { readStageLog } from "../backends/kubernetes/pod-logs.ts";
import type { OpTask } from "../api/optask.ts";
import { EmbeddedClient } from "../store/embedded-client.ts";
import { EmbeddedStore } from "../store/embedded.ts";
import type { EventRecord, KindName, ObjectOf, ObjectRef } from "../store/types.ts";
import { acquireLock, chooseRun, lockOwner, runPaths } from "./runs.ts";
import { age, EXECUTION_HEADERS, executionRow, NODE_HEADERS, nodeRow, renderTable, sortExecutions, TASK_HEADERS, taskRow } from "./table.ts";

type Reader = {
  list<K extends KindName>(kind: K): Promise<ObjectOf<K>[]>;
  events(ref?: ObjectRef): Promise<EventRecord[]>;
};

type Out = { write(text: string): unknown };

export type InspectOptions = { run?: string; namespace?: string };

/** The run's store: live through the socket, else the journal read-only. */
function openReader(options: InspectOptions): { reader: Reader; live: boolean; run: string } {
  const run = chooseRun(options.run);
  const paths = runPaths(run);
  if (!existsSync(paths.store)) throw new Error(`run "${run}" has no state in ${paths.root}`);
  if (lockOwner(paths) !== undefined && existsSync(paths.socket)) return { reader: new EmbeddedClient(paths.socket), live: true, run };
  return { reader: new EmbeddedStore({ folder: paths.store, readOnly: true }), live: false, run };
}

async function findExecution(reader: Reader, name: string, namespace: string | undefined): Promise<OpExecution> {
  const all = await reader.list("OpExecution");
  const matches = all.filter((e) => e.metadata.name === name && (namespace === undefined || e.metadata.namespace === namespace));
  if (matches.length === 1 && matches[0] !== undefined) return matches[0];
  if (matches.length > 1) throw new Error(`${name} exists in several namespaces (${matches.map((e) => e.metadata.namespace).join(", ")}); say which with -n`);
  const close = all.map((e) => e.metadata.name ?? "").filter((n) => n.startsWith(name.slice(0, Math.max(3, name.length - 3))));
  throw new Error(`no execution ${name}${close.length > 0 ? `; did you mean ${close.slice(0, 3).join(", ")}?` : ""} (odop get lists them)`);
}

export async function getCommand(what: string, options: InspectOptions, out: Out): Promise<void> {
  const { reader, live, run } = openReader(options);
  const now = Date.now();
  const inNamespace = <T extends OpTask | OpExecution>(xs: T[]) => xs.filter((x) => options.namespace === undefined || x.metadata.namespace === options.namespace);
  out.write(`run ${run} (${live ? "live" : "not running; last saved state"})\n`);
  if (what === "tasks" || what === "optasks" || what === "all") {
    const tasks = inNamespace(await reader.list("OpTask"));
    out.write(`${renderTable(TASK_HEADERS, tasks.map(taskRow))}\n`);
    if (what === "all") out.write("\n");
  }
  if (what === "executions" || what === "opexecutions" || what === "opexec" || what === "all") {
    const executions = sortExecutions(inNamespace(await reader.list("OpExecution")));
    out.write(`${renderTable(EXECUTION_HEADERS, executions.map((e) => executionRow(e, now)))}\n`);
  }
  if (what === "nodes" || what === "opnodes" || what === "opnode" || what === "all") {
    if (what === "all") out.write("\n");
    const nodes = (await reader.list("OpNode")).sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""));
    out.write(`${renderTable(NODE_HEADERS, nodes.map((n) => nodeRow(n, now)))}\n`);
  }
  if (!["tasks", "optasks", "executions", "opexecutions", "opexec", "nodes", "opnodes", "opnode", "all"].includes(what)) {
    throw new Error(`odop get ${what}: say executions, tasks, nodes or all`);
  }
}

export async function describeCommand(name: string, options: InspectOptions, out: Out): Promise<void> {
  const { reader } = openReader(options);
  const tasks = await reader.list("OpTask");
  const task = tasks.find((t) => t.metadata.name === name && (options.namespace === undefined || t.metadata.namespace === options.namespace));
  if (task !== undefined) {
    out.write(describeTask(task, await reader.events({ kind: "OpTask", namespace: task.metadata.namespace, name })));
    return;
  }
  const e = await findExecution(reader, name, options.namespace);
  out.write(describeExecution(e, await reader.events({ kind: "OpExecution", namespace: e.metadata.namespace, name })));
}

function describeExecution(e: OpExecution, events: EventRecord[]): string {
  const s = e.status ?? {};
  const lines = [
    `Name:         ${e.metadata.name ?? ""}`,
    `Namespace:    ${e.metadata.namespace ?? "default"}`,
    `Task:         ${e.spec.taskRef.name}`,
    `Execution ID: ${e.spec.executionId}`,
    `Trigger:      ${e.spec.trigger.reason}${e.spec.trigger.files === undefined ? "" : ` (${e.spec.trigger.files.length} file(s))`}`,
    ...(e.spec.trigger.files ?? []).slice(0, 20).map((f) => `                ${f}`),
    `Action:       ${e.spec.action}`,
    `Phase:        ${s.phase ?? "Pending"}${s.reason === undefined ? "" : ` (${s.reason})`}`,
    `Message:      ${s.message ?? ""}`,
    `Node:         ${s.node ?? ""}`,
    `Cores:        ${s.cpuset ?? ""}`,
    `Attempts:     ${s.attempts ?? 0}${s.retries === undefined ? "" : `, ${s.retries} retried`}`,
    `Started:      ${s.startedAt ?? ""}`,
    `Finished:     ${s.finishedAt ?? ""}`,
    ...(s.backend?.workspace === undefined ? [] : [`Workspace:    ${s.backend.workspace}`]),
    ...(s.backend?.slurmJobId === undefined ? [] : [`Slurm job:    ${s.backend.slurmJobId}`]),
    ...(s.usage === undefined ? [] : [`Usage:        ${s.usage.cpuSeconds.toFixed(2)} CPU s, ${s.usage.wallSeconds.toFixed(2)} s wall, peak ${(s.usage.peakMemoryBytes / 2 ** 20).toFixed(1)} MiB`]),
    "Stages:",
    renderTable(
      ["  STAGE", "PHASE", "ATTEMPT", "EXIT", "PAUSED", "REASON"],
      (s.stages ?? []).map((st) => [`  ${st.name}`, st.phase, String(st.attempt ?? ""), st.exitCode === undefined ? "" : String(st.exitCode), st.pausedSeconds === undefined ? "" : `${st.pausedSeconds.toFixed(1)}s`, st.reason ?? ""]),
    ),
    "Conditions:",
    renderTable(["  TYPE", "STATUS", "REASON", "MESSAGE"], (s.conditions ?? []).map((c) => [`  ${c.type}`, c.status, c.reason, c.message])),
  ];
  return `${lines.join("\n")}\n${formatEvents(events)}`;
}

function describeTask(t: OpTask, events: EventRecord[]): string {
  const s = t.status ?? {};
  const p = s.profile;
  const lines = [
    `Name:       ${t.metadata.name ?? ""}`,
    `Namespace:  ${t.metadata.namespace ?? "default"}`,
    `Trigger:    ${s.trigger ?? ""}`,
    `Runs:       ${s.runs ?? 0} (${s.active ?? 0} active, ${s.succeeded ?? 0} succeeded, ${s.failed ?? 0} failed)`,
    `Last:       ${s.lastExecution === undefined ? "" : `${s.lastExecution.name} ${s.lastExecution.phase}`}`,
    ...(p === undefined ? [] : [`Profile:    ${p.runs} run(s): ${p.avgCores} cores avg (${p.peakCores} peak), ${(p.peakMemoryBytes / 2 ** 20).toFixed(1)} MiB peak, ${p.avgSeconds}s avg`]),
    "Conditions:",
    renderTable(["  TYPE", "STATUS", "REASON", "MESSAGE"], (s.conditions ?? []).map((c) => [`  ${c.type}`, c.status, c.reason, c.message])),
  ];
  return `${lines.join("\n")}\n${formatEvents(events)}`;
}

function formatEvents(events: EventRecord[]): string {
  if (events.length === 0) return "Events:     <none>\n";
  const now = Date.now();
  const rows = events.map((e) => [`  ${e.type}`, e.reason, `${age(now - Date.parse(e.lastTimestamp))}${e.count > 1 ? ` (x${e.count})` : ""}`, e.message]);
  return `Events:\n${renderTable(["  TYPE", "REASON", "AGE", "MESSAGE"], rows)}\n`;
}

export async function logsCommand(name: string, options: InspectOptions & { stage: string; attempt?: number; follow?: boolean; cluster?: boolean }, out: Out): Promise<void> {
  if (options.cluster === true) {
    if (!(STAGES as readonly string[]).includes(options.stage)) throw new Error(`--stage is one of ${STAGES.join(", ")}`);
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    const namespace = options.namespace ?? kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? "default";
    out.write(await readStageLog(kubeConfig, namespace, name, options.stage as StageName, options.attempt));
    return;
  }
  const { reader } = openReader(options);
  const e = await findExecution(reader, name, options.namespace);
  const workspace = e.status?.backend?.workspace;
  if (workspace === undefined) throw new Error(`${name} has not started a stage yet (phase ${e.status?.phase ?? "Pending"})`);
  const attempt = options.attempt ?? e.status?.stages?.find((s) => s.name === options.stage)?.attempt ?? e.status?.attempts ?? 1;
  const files = ["out", "err"].map((kind) => join(workspace, "logs", `${options.stage}-${attempt}.${kind}`)).filter((f) => existsSync(f));
  if (files.length === 0) throw new Error(`no ${options.stage} logs for attempt ${attempt} of ${name} in ${join(workspace, "logs")}`);
  // Like tail: a header per file only when more than one has something to show.
  const nonEmpty = files.filter((f) => statSync(f).size > 0);
  for (const file of nonEmpty) {
    if (nonEmpty.length > 1) out.write(`==> ${file} <==\n`);
    out.write(readFileSync(file, "utf8"));
  }
  if (options.follow === true) await follow(files[0] ?? "", out);
}

/** Prints what is appended to `file` until interrupted. */
function follow(file: string, out: Out): Promise<void> {
  let offset = statSync(file).size;
  return new Promise((resolve) => {
    watchFile(file, { interval: 250 }, (current) => {
      if (current.size <= offset) return;
      createReadStream(file, { start: offset, end: current.size - 1, encoding: "utf8" }).on("data", (chunk) => out.write(String(chunk)));
      offset = current.size;
    });
    process.once("SIGINT", () => {
      unwatchFile(file);
      resolve();
    });
  });
}

const ACTION_OF: Record<string, Action> = { pause: "Pause", resume: "Run", stop: "Stop", skip: "Skip" };

export async function actionCommand(verb: string, name: string, options: InspectOptions, out: Out): Promise<void> {
  const action = ACTION_OF[verb];
  if (action === undefined) throw new Error(`unknown action ${verb}`);
  const run = chooseRun(options.run);
  const paths = runPaths(run);
  if (lockOwner(paths) !== undefined && existsSync(paths.socket)) {
    const client = new EmbeddedClient(paths.socket);
    const e = await findExecution(client, name, options.namespace);
    await client.setAction(e.metadata.namespace ?? "default", name, action);
    out.write(`${name}: spec.action set to ${action}\n`);
    return;
  }
  // No live run: write the action into the journal (holding the run's lock meanwhile);
  // the next odop run applies it.
  const release = acquireLock(paths);
  const store = new EmbeddedStore({ folder: paths.store });
  try {
    const e = await findExecution(store, name, options.namespace);
    await store.update({ ...e, spec: { ...e.spec, action } });
    out.write(`${name}: spec.action set to ${action} (run "${run}" is not running; it applies on the next odop run)\n`);
  } finally {
    await store.close();
    release();
  }
}
