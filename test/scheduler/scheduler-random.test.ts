/**
 * The scheduler against a plain reference on generated inputs: the reference scans
 * every node for every execution (what the best-fit index must be equivalent to), and
 * the invariants below must hold for any input. Generated with a fixed seed: the same
 * cases every run.
 */
import { describe, expect, it } from "vitest";
import { pickCores } from "../../src/scheduler/pick-cores.ts";
import { queueOrder } from "../../src/scheduler/queue.ts";
import { schedule } from "../../src/scheduler/scheduler.ts";
import type { ActiveExecution, Decision, NodeView, PendingExecution, SchedulerInput } from "../../src/scheduler/types.ts";
import { GiB, rng } from "./fixtures.ts";

function generate(seed: number, withActive: boolean): SchedulerInput {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const nodes: NodeView[] = [];
  for (let i = 0; i < 40; i++) {
    const count = pick([4, 8, 16]);
    const busyShare = pick([0, 0.2, 0.6, 1]);
    nodes.push({
      name: `n${i}`,
      cores: Array.from({ length: count }, (_, id) => {
        const harvestable = r() >= busyShare;
        return { id, mainUsage: harvestable ? 0 : 1, harvestable };
      }),
      memoryAvailableBytes: Math.floor(r() * 32) * GiB,
      labels: { zone: pick(["a", "b"]), gpu: pick(["yes", "no"]) },
      stale: r() < 0.1,
    });
  }
  const active: ActiveExecution[] = [];
  if (withActive) {
    for (let i = 0; i < 30; i++) {
      const n = pick(nodes);
      const first = Math.floor(r() * n.cores.length);
      active.push({
        key: `a${i}`,
        task: pick(["t0", "t1", "t2"]),
        node: n.name,
        cores: [first, (first + 1) % n.cores.length].filter((c, j, all) => all.indexOf(c) === j),
        priority: Math.floor(r() * 3),
        onContention: pick(["pause", "requeue", "cancel"] as const),
        pausedByScheduler: r() < 0.3,
        pausedByUser: r() < 0.1,
        memoryBytes: GiB,
      });
    }
  }
  const selectors = [undefined, undefined, { zone: "a" }, { gpu: "yes", zone: "b" }, { zone: "c" }];
  const pending: PendingExecution[] = [];
  for (let i = 0; i < 300; i++) {
    const min = pick([1, 1, 2, 4, 8, 20]);
    const selector = pick(selectors);
    const p: PendingExecution = {
      key: `p${String(i).padStart(3, "0")}`,
      task: pick(["t0", "t1", "t2", "t3"]),
      priority: Math.floor(r() * 4),
      createdAt: Math.floor(r() * 50),
      cores: { min, max: min + pick([0, 0, 3, 16]) },
      memoryBytes: Math.floor(r() * 6) * GiB,
    };
    if (selector !== undefined) p.nodeSelector = selector;
    if (r() < 0.05) p.node = pick(nodes).name;
    pending.push(p);
  }
  return { nodes, active, pending, concurrency: new Map([["t0", 5], ["t1", 40]]) };
}

/** Starts only (no active executions): every node scanned for every execution. */
function reference(input: SchedulerInput): Decision[] {
  const free = input.nodes.map((n) => (n.stale ? [] : n.cores.filter((c) => c.harvestable).map((c) => c.id)));
  const memory = input.nodes.map((n) => n.memoryAvailableBytes);
  const running = new Map<string, number>();
  const out: Decision[] = [];
  for (const p of [...input.pending].sort(queueOrder)) {
    const count = running.get(p.task) ?? 0;
    if (count >= (input.concurrency.get(p.task) ?? Infinity)) continue;
    let best = -1;
    input.nodes.forEach((n, g) => {
      const fits =
        (p.node === undefined || p.node === n.name) &&
        Object.entries(p.nodeSelector ?? {}).every(([k, v]) => n.labels[k] === v) &&
        free[g]!.length >= p.cores.min &&
        memory[g]! >= p.memoryBytes;
      if (fits && (best < 0 || free[g]!.length < free[best]!.length)) best = g;
    });
    if (best < 0) continue;
    const cores = pickCores(free[best]!, Math.min(free[best]!.length, p.cores.max));
    free[best] = free[best]!.filter((c) => !cores.includes(c));
    memory[best] = memory[best]! - p.memoryBytes;
    running.set(p.task, count + 1);
    out.push({ type: "start", key: p.key, node: input.nodes[best]!.name, cores });
  }
  return out;
}

const seeds = [1, 2, 3, 4, 5, 6, 7, 8];

describe("schedule on generated inputs", () => {
  it.each(seeds)("seed %d: the same starts as scanning every node", (seed) => {
    const given = generate(seed, false);
    const want = reference(given);
    expect(want.length).toBeGreaterThan(10); // the case is not trivial
    expect(schedule(given)).toEqual(want);
  });

  it.each(seeds)("seed %d: deterministic, whatever the order of the queue and of the active executions", (seed) => {
    const given = generate(seed, true);
    const once = schedule(given);
    expect(schedule(given)).toEqual(once);
    expect(schedule({ ...given, pending: [...given.pending].reverse(), active: [...given.active].reverse() })).toEqual(once);
  });

  it.each(seeds)("seed %d: no core given twice, only free harvestable cores, within min/max, memory and concurrency", (seed) => {
    const given = generate(seed, true);
    const decisions = schedule(given);
    const byName = new Map(given.nodes.map((n) => [n.name, n]));
    const activeByKey = new Map(given.active.map((a) => [a.key, a]));
    const pendingByKey = new Map(given.pending.map((p) => [p.key, p]));
    // Cores held through the round: running and person-paused executions, taken back or not.
    const used = new Set(given.active.filter((a) => !a.pausedByScheduler || a.pausedByUser).flatMap((a) => a.cores.map((c) => `${a.node}/${c}`)));
    const memory = new Map(given.nodes.map((n) => [n.name, n.memoryAvailableBytes]));
    const perTask = new Map<string, number>();
    for (const a of given.active) perTask.set(a.task, (perTask.get(a.task) ?? 0) + 1);
    for (const d of decisions) {
      if (d.type === "start" || d.type === "resume") {
        const nodeName = d.type === "start" ? d.node : activeByKey.get(d.key)!.node;
        const n = byName.get(nodeName)!;
        expect(n.stale).toBe(false);
        for (const c of d.cores) {
          expect(n.cores.find((x) => x.id === c)?.harvestable).toBe(true);
          expect(used.has(`${nodeName}/${c}`)).toBe(false);
          used.add(`${nodeName}/${c}`);
        }
      }
      if (d.type === "start") {
        const p = pendingByKey.get(d.key)!;
        expect(d.cores.length).toBeGreaterThanOrEqual(p.cores.min);
        expect(d.cores.length).toBeLessThanOrEqual(p.cores.max);
        memory.set(d.node, memory.get(d.node)! - p.memoryBytes);
        expect(memory.get(d.node)).toBeGreaterThanOrEqual(0);
        perTask.set(p.task, (perTask.get(p.task) ?? 0) + 1);
        expect(perTask.get(p.task)).toBeLessThanOrEqual(given.concurrency.get(p.task) ?? Infinity);
      }
      if (d.type === "resume") expect(d.cores.length).toBe(activeByKey.get(d.key)!.cores.length);
      if (d.type === "pause" || d.type === "requeue" || d.type === "cancel") {
        const a = activeByKey.get(d.key)!;
        expect(a.onContention).toBe(d.type);
        expect(a.pausedByUser || a.pausedByScheduler).toBe(false);
      }
    }
    expect(decisions.some((d) => d.type === "resume")).toBe(true);
    expect(decisions.some((d) => d.type !== "start" && d.type !== "resume")).toBe(true);
  });
});
