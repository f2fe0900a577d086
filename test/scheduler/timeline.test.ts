/**
 * Windows and scheduler together, second by second with a fake clock, as the controller
 * will drive them: samples in, views out, one round, decisions applied to a small
 * stand-in for the controller's state.
 */
import { describe, expect, it } from "vitest";
import type { NodeSample } from "../../src/api/sample.ts";
import { schedule } from "../../src/scheduler/scheduler.ts";
import type { ActiveExecution, Decision, PendingExecution } from "../../src/scheduler/types.ts";
import { NodeWindow } from "../../src/scheduler/window.ts";
import { GiB, pending } from "./fixtures.ts";

function sample(t: number, mains: readonly number[]): NodeSample {
  return {
    version: "v1",
    node: "n1",
    time: t,
    intervalMs: 1000,
    cores: mains.map((main, id) => ({ id, total: main, main, odop: 0 })),
    memory: { totalBytes: 64 * GiB, availableBytes: 32 * GiB, mainBytes: 0, odopBytes: 0 },
    main: { processes: 1, cpu: 0 },
  };
}

/** Applies decisions the way the controller would, and returns them in a short form. */
function apply(decisions: readonly Decision[], queue: PendingExecution[], active: ActiveExecution[]): string[] {
  return decisions.map((d) => {
    const i = active.findIndex((a) => a.key === d.key);
    const a = active[i];
    switch (d.type) {
      case "start": {
        const [p] = queue.splice(queue.findIndex((q) => q.key === d.key), 1);
        active.push({ ...p!, node: d.node, cores: d.cores, onContention: "pause", pausedByScheduler: false, pausedByUser: false });
        return `start ${d.key} ${d.cores.join(",")}`;
      }
      case "pause":
        active[i] = { ...a!, pausedByScheduler: true };
        return `pause ${d.key}`;
      case "resume":
        active[i] = { ...a!, pausedByScheduler: false, cores: d.cores };
        return `resume ${d.key} ${d.cores.join(",")}`;
      case "requeue":
      case "cancel":
        active.splice(i, 1);
        return `${d.type} ${d.key}`;
    }
  });
}

describe("a node over time (idle 0.15, busy 0.5, hold 3 s, no smoothing)", () => {
  it("starts on idle cores after the hold, pauses at once on a spike, resumes after a new hold", () => {
    const w = new NodeWindow({ name: "n1", config: { halfLifeMs: 0 } });
    const queue = [pending("x", { cores: { min: 2, max: 2 } })];
    const active: ActiveExecution[] = [];
    // Main use of cores 0..3 each second; the main application keeps cores 0 and 1.
    const timeline: [number, number[]][] = [
      [0, [1, 1, 0, 0]],
      [1, [1, 1, 0.3, 0]], // noise between the thresholds before core 2's hold is complete: it starts again
      [2, [1, 1, 0, 0]],
      [3, [1, 1, 0, 0]], // core 3 released; core 2 still holding: x needs two
      [4, [1, 1, 0, 0.4]], // noise on a released core: it stays released
      [5, [1, 1, 0, 0]], // core 2 released
      [6, [1, 1, 0.9, 0]], // a spike: taken back at once
      [7, [1, 1, 0, 0]],
      [8, [1, 1, 0, 0]],
      [9, [1, 1, 0, 0]],
      [10, [1, 1, 0, 0]], // a full hold again
    ];
    const log: string[] = [];
    for (const [s, mains] of timeline) {
      w.add(sample(s * 1000, mains));
      const got = apply(schedule({ nodes: [w.view(s * 1000)], active, pending: queue, concurrency: new Map() }), queue, active);
      log.push(`${s}: ${got.join("; ")}`);
    }
    expect(log).toEqual(["0: ", "1: ", "2: ", "3: ", "4: ", "5: start x 2,3", "6: pause x", "7: ", "8: ", "9: ", "10: resume x 2,3"]);
  });
});
