/**
 * What `odop run` shows while it runs. On a terminal: a live table redrawn twice a
 * second (as depio shows its tasks). Otherwise: one plain line per phase change, for
 * logs and CI.
 */
import type { OpExecution } from "../api/opexecution.ts";
import type { NodeSample } from "../api/sample.ts";
import type { Store } from "../store/types.ts";
import { EXECUTION_HEADERS, executionRow, renderTable, sortExecutions } from "./table.ts";

export type ViewSource = {
  run: string;
  executions: () => OpExecution[];
  sample: () => NodeSample | undefined;
  main: () => string;
};

type Out = { write(text: string): unknown; columns?: number; rows?: number };

/** Redraws a table on a terminal; returns a function that stops it (leaving the last frame). */
export function liveTable(source: ViewSource, out: Out, intervalMs = 500): () => void {
  let previousLines = 0;
  const draw = () => {
    const now = Date.now();
    const executions = sortExecutions(source.executions());
    const maxRows = Math.max(3, (out.rows ?? 30) - 6);
    const shown = executions.slice(0, maxRows);
    const counts = countPhases(executions);
    const lines = [
      `odop run ${source.run} · main: ${source.main()} · ${harvestLine(source.sample())}`,
      `executions: ${counts}`,
      "",
      ...renderTable(EXECUTION_HEADERS, shown.map((e) => executionRow(e, now))).split("\n"),
      ...(executions.length > shown.length ? [`… ${executions.length - shown.length} more (odop get)`] : []),
    ].map((l) => (out.columns === undefined ? l : l.slice(0, out.columns)));
    const clear = previousLines > 0 ? `\x1b[${previousLines}F\x1b[J` : "";
    out.write(`${clear}${lines.join("\n")}\n`);
    previousLines = lines.length;
  };
  draw();
  const timer = setInterval(draw, intervalMs);
  return () => {
    clearInterval(timer);
    draw();
  };
}

/** Prints one line per execution phase change; returns a function that stops it. */
export function plainLines(store: Store, out: Out): () => void {
  const seen = new Map<string, string>();
  return store.watch("OpExecution", ({ type, object: e }) => {
    if (type === "DELETED" || e.status?.phase === undefined) return;
    const key = `${e.metadata.namespace ?? ""}/${e.metadata.name ?? ""}`;
    const phase = e.status?.phase ?? "Pending";
    const marker = `${phase}|${e.status?.reason ?? ""}`;
    if (seen.get(key) === marker) return;
    seen.set(key, marker);
    const time = new Date().toISOString().slice(11, 19);
    const cores = e.status?.cpuset === undefined || e.status.cpuset === "" ? "" : ` cores=${e.status.cpuset}`;
    out.write(`${time} ${e.metadata.name ?? ""} ${phase}${cores}${e.status?.reason === undefined ? "" : ` ${e.status.reason}`}${e.status?.message === undefined ? "" : `: ${e.status.message}`}\n`);
  });
}

function countPhases(executions: readonly OpExecution[]): string {
  const counts = new Map<string, number>();
  for (const e of executions) counts.set(e.status?.phase ?? "Pending", (counts.get(e.status?.phase ?? "Pending") ?? 0) + 1);
  return counts.size === 0 ? "none yet" : [...counts].map(([p, n]) => `${n} ${p}`).join(", ");
}

function harvestLine(sample: NodeSample | undefined): string {
  if (sample === undefined) return "sampling…";
  const cores = sample.cores.map((c) => `${c.id}:${Math.round(c.main * 100)}%/${Math.round(c.odop * 100)}%`).join(" ");
  return `cores main/odop ${cores}`;
}
