/** Plain-text tables as kubectl prints them: upper-case headers, columns padded with spaces. */
import type { OpExecution } from "../api/opexecution.ts";
import type { OpNode } from "../api/opnode.ts";
import type { OpTask } from "../api/optask.ts";

export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** "5s", "3m12s", "2h5m", "3d4h", like kubectl's ages. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 === 0 ? "" : `${s % 60}s`}`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) === 0 ? "" : `${Math.floor((s % 3600) / 60)}m`}`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600) === 0 ? "" : `${Math.floor((s % 86_400) / 3600)}h`}`;
}

export const EXECUTION_HEADERS = ["EXECUTION", "TASK", "PHASE", "CORES", "TRIGGER", "DURATION", "REASON"] as const;

export function executionRow(e: OpExecution, now: number): string[] {
  const started = Date.parse(e.status?.startedAt ?? "");
  const finished = Date.parse(e.status?.finishedAt ?? "");
  const duration = Number.isFinite(started) ? age((Number.isFinite(finished) ? finished : now) - started) : "";
  return [
    e.metadata.name ?? "",
    e.spec.taskRef.name,
    e.status?.phase ?? "Pending",
    e.status?.cpuset ?? "",
    e.spec.trigger.reason,
    duration,
    e.status?.reason ?? "",
  ];
}

export const TASK_HEADERS = ["TASK", "TRIGGER", "ACTIVE", "SUCCEEDED", "FAILED", "LAST", "READY"] as const;

export function taskRow(t: OpTask): string[] {
  const ready = t.status?.conditions?.find((c) => c.type === "Ready");
  return [
    t.metadata.name ?? "",
    t.status?.trigger ?? "",
    String(t.status?.active ?? 0),
    String(t.status?.succeeded ?? 0),
    String(t.status?.failed ?? 0),
    t.status?.lastExecution?.phase ?? "",
    ready === undefined ? "" : ready.status === "True" ? "True" : `False (${ready.reason})`,
  ];
}

/** Executions in the order people read them: active first, then newest. */
export function sortExecutions(executions: readonly OpExecution[]): OpExecution[] {
  const rank = (e: OpExecution) => (e.status?.finishedAt === undefined ? 0 : 1);
  return [...executions].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? "") ||
      (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""),
  );
}

export const NODE_HEADERS = ["NODE", "SOURCE", "CORES", "HARVESTABLE", "MEMORY", "STATE", "HEARTBEAT"] as const;

export function nodeRow(n: OpNode, now: number): string[] {
  const s = n.status;
  const heartbeat = Date.parse(s?.lastHeartbeatTime ?? "");
  return [
    n.metadata.name ?? "",
    s?.source ?? "",
    String(s?.capacity?.cores ?? ""),
    s?.harvestable === undefined ? "" : `${s.harvestable.cores}${s.harvestable.cpuset === "" ? "" : ` (${s.harvestable.cpuset})`}`,
    s?.harvestable === undefined ? "" : String(s.harvestable.memory),
    s?.slurm?.state.join("+") ?? "",
    Number.isFinite(heartbeat) ? `${age(now - heartbeat)} ago` : "",
  ];
}
