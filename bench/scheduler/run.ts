/**
 * Scheduler bench (DESIGN.md §6): one decision round over 5,000 nodes × 128 cores and
 * 50,000 pending executions should take ≤ 50 ms on one core, and memory should grow
 * linearly. Prints median and p95 ms per round, decisions, and heap, at full scale and
 * at 1/10 scale. Run with `npm run bench:scheduler` (it passes --expose-gc so that the
 * heap figures are measured after a collection).
 *
 * The inputs go through NodeWindow, as in the controller: nodes of a few kinds (mostly
 * idle, half busy, busy, bursty — cores the main application just took back — and
 * stale), running and paused executions on them, and a queue with mixed priorities,
 * core ranges, memory, selectors, pinned nodes and concurrency limits. A fixed seed: the
 * same inputs every run.
 */
import { PerformanceObserver } from "node:perf_hooks";
import type { NodeSample } from "../../src/api/sample.ts";
import { schedule } from "../../src/scheduler/scheduler.ts";
import type { ActiveExecution, NodeView, PendingExecution, SchedulerInput } from "../../src/scheduler/types.ts";
import { NodeWindow } from "../../src/scheduler/window.ts";
import { rng } from "../../test/support/rng.ts";

const GiB = 1024 ** 3;
const CORES = 128;
const NOW = 1_000_000;
const WARMUP = 5;
const ROUNDS = 30;

const gc = (globalThis as { gc?: () => void }).gc;

// Garbage collection while the measured rounds run: allocation is part of a round's cost.
let gcMs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcCount++;
  }
}).observe({ entryTypes: ["gc"] });

function heapMB(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 1024 ** 2;
}


type Kind = "idle" | "half" | "busy" | "bursty" | "stale";

function buildWindows(nodeCount: number, r: () => number): { windows: NodeWindow[]; kinds: Kind[] } {
  const windows: NodeWindow[] = [];
  const kinds: Kind[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const x = r();
    const kind: Kind = x < 0.45 ? "idle" : x < 0.7 ? "half" : x < 0.85 ? "busy" : x < 0.95 ? "bursty" : "stale";
    const name = `node-${String(i).padStart(5, "0")}`;
    const labels = { partition: r() < 0.2 ? "gpu" : "cpu", rack: `r${Math.floor(i / 100)}`, zone: r() < 0.5 ? "a" : "b" };
    const w = new NodeWindow({ name, labels, config: { memoryMarginBytes: GiB } });
    // Which cores the main application uses: none, half, nearly all.
    const usedShare = kind === "idle" ? 0.05 : kind === "half" ? 0.5 : kind === "busy" ? 0.95 : 0.3;
    const used = Array.from({ length: CORES }, () => r() < usedShare);
    const t0 = kind === "stale" ? NOW - 60_000 : NOW - 4000;
    for (let s = 0; s <= 4; s++) {
      const last = s === 4;
      const cores = used.map((u, id) => {
        // Bursty nodes: in the last sample the main application takes back a quarter of the idle cores.
        const spike = kind === "bursty" && last && id % 4 === 0;
        const main = u || spike ? 0.7 + 0.3 * r() : 0.05 * r();
        return { id, total: main, main, odop: 0 };
      });
      const sample: NodeSample = {
        version: "v1",
        node: name,
        time: t0 + s * 1000,
        intervalMs: 1000,
        cores,
        memory: { totalBytes: 512 * GiB, availableBytes: Math.floor((64 + r() * 400) * GiB), mainBytes: 64 * GiB, odopBytes: 0 },
        main: { processes: 64, cpu: cores.reduce((a, c) => a + c.main, 0) },
      };
      w.add(sample);
    }
    windows.push(w);
    kinds.push(kind);
  }
  return { windows, kinds };
}

function buildActive(views: readonly NodeView[], kinds: readonly Kind[], r: () => number, tasks: number): ActiveExecution[] {
  const active: ActiveExecution[] = [];
  views.forEach((v, i) => {
    if (kinds[i] === "busy" || r() < 0.4) return;
    // Bursty nodes: executions placed before the spike, on cores now taken back.
    const ids = kinds[i] === "bursty" ? v.cores.filter((c) => c.id % 4 === 0).map((c) => c.id) : v.cores.filter((c) => c.harvestable).map((c) => c.id);
    for (let j = 0; j + 4 <= ids.length && j < 24; j += 4) {
      const y = r();
      active.push({
        key: `active-${active.length}`,
        task: `task-${Math.floor(r() * tasks)}`,
        node: v.name,
        cores: ids.slice(j, j + 4),
        priority: Math.floor(r() * 10),
        onContention: y < 0.6 ? "pause" : y < 0.9 ? "requeue" : "cancel",
        pausedByScheduler: y > 0.95,
        pausedByUser: y > 0.99,
        memoryBytes: 2 * GiB,
      });
    }
  });
  return active;
}

function buildPending(count: number, views: readonly NodeView[], r: () => number, tasks: number): PendingExecution[] {
  const gpu = { partition: "gpu" };
  const pending: PendingExecution[] = [];
  for (let i = 0; i < count; i++) {
    const min = [1, 1, 1, 2, 4, 8, 16][Math.floor(r() * 7)] ?? 1;
    const p: PendingExecution = {
      key: `exec-${String(i).padStart(6, "0")}`,
      task: `task-${Math.floor(r() * tasks)}`,
      priority: Math.floor(r() * 10),
      createdAt: NOW - Math.floor(r() * 3_600_000),
      cores: { min, max: min * ([1, 2, 4][Math.floor(r() * 3)] ?? 1) },
      memoryBytes: Math.floor(r() * 8 * GiB),
    };
    const y = r();
    if (y < 0.1) p.nodeSelector = gpu; // shared by object, as executions of one task would
    else if (y < 0.12) p.nodeSelector = { rack: `r${Math.floor(r() * Math.max(1, views.length / 100))}`, zone: "a" };
    else if (y < 0.13) p.node = views[Math.floor(r() * views.length)]?.name ?? "";
    pending.push(p);
  }
  return pending;
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function run(label: string, nodeCount: number, pendingCount: number): Promise<void> {
  const r = rng(42);
  const tasks = Math.max(10, pendingCount / 100);
  const heapBefore = heapMB();
  const { windows, kinds } = buildWindows(nodeCount, r);
  const views = windows.map((w) => w.view(NOW));
  const active = buildActive(views, kinds, r, tasks);
  const pending = buildPending(pendingCount, views, r, tasks);
  const concurrency = new Map<string, number>();
  for (let i = 0; i < tasks; i += 10) concurrency.set(`task-${i}`, 5);
  const input: SchedulerInput = { nodes: views, active, pending, concurrency };
  const heapInputs = heapMB();

  let t: number;
  let decisions = schedule(input);
  for (let i = 1; i < WARMUP; i++) decisions = schedule(input);
  const times: number[] = [];
  const cpu: number[] = [];
  gcMs = 0;
  gcCount = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const c = process.cpuUsage();
    t = performance.now();
    decisions = schedule(input);
    times.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000);
  }
  await new Promise((resolve) => setImmediate(resolve)); // the gc entries arrive on the event loop
  const roundsGcMs = gcMs;
  const roundsGcCount = gcCount;
  const heapAfter = heapMB();

  // What the controller pays before each round: a view of every node, each with a new sample.
  const viewTimes: number[] = [];
  for (let s = 1; s <= 10; s++) {
    for (const w of windows) {
      const last = w.samples().at(-1);
      if (last !== undefined) w.add({ ...last, time: last.time + 1000 });
    }
    t = performance.now();
    for (const w of windows) w.view(NOW + s * 1000);
    viewTimes.push(performance.now() - t);
  }
  viewTimes.sort((a, b) => a - b);

  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);

  const counts = new Map<string, number>();
  for (const d of decisions) counts.set(d.type, (counts.get(d.type) ?? 0) + 1);
  const harvestable = views.reduce((a, v) => a + v.cores.filter((c) => c.harvestable).length, 0);
  const fmt = (x: number): string => x.toFixed(1);
  console.log(`${label}: ${nodeCount} nodes × ${CORES} cores (${harvestable} harvestable), ${active.length} active, ${pendingCount} pending`);
  const spread = (xs: number[]): string => `median ${fmt(percentile(xs, 0.5))} ms, p95 ${fmt(percentile(xs, 0.95))} ms, min ${fmt(xs[0] ?? NaN)} ms`;
  console.log(`  round (wall): ${spread(times)} (${ROUNDS} rounds after ${WARMUP} warm-up)`);
  console.log(`  round (cpu):  ${spread(cpu)}; gc in the rounds: ${roundsGcCount} pauses, ${fmt(roundsGcMs / ROUNDS)} ms a round`);
  console.log(`  decisions: ${decisions.length} (${[...counts].map(([k, v]) => `${k} ${v}`).join(", ")})`);
  console.log(`  views of all nodes, each with a new sample: median ${fmt(percentile(viewTimes, 0.5))} ms (not part of the round)`);
  console.log(
    `  heap: ${fmt(heapBefore)} MB before, ${fmt(heapInputs)} MB with inputs (+${fmt(heapInputs - heapBefore)}), ${fmt(heapAfter)} MB after rounds${gc === undefined ? " (no --expose-gc: not collected)" : ""}`,
  );
}

console.log(`node ${process.version}, one thread`);
await run("1/10 scale", 500, 5_000);
await run("full scale", 5_000, 50_000);
