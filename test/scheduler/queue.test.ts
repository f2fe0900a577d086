import { describe, expect, it } from "vitest";
import { queueOrder, queuePositions } from "../../src/scheduler/queue.ts";
import type { PendingExecution } from "../../src/scheduler/types.ts";
import { pending, rng } from "./fixtures.ts";

const keysInOrder = (queue: readonly PendingExecution[]): string[] => Array.from(queuePositions(queue), (i) => queue[i]!.key);

describe("queuePositions", () => {
  it.each([
    [
      "priority desc, then createdAt asc, then key",
      [pending("c", { priority: 1, createdAt: 5 }), pending("b", { priority: 1, createdAt: 5 }), pending("a", { priority: 1, createdAt: 9 }), pending("z", { priority: 7, createdAt: 99 })],
      ["z", "b", "c", "a"],
    ],
    ["negative and fractional priorities", [pending("a", { priority: -1 }), pending("b", { priority: 0.5 }), pending("c", { priority: -3 })], ["b", "a", "c"]],
    ["priorities far apart (ranked among the distinct values)", [pending("a", { priority: -2e9 }), pending("b", { priority: 2e9 }), pending("c", { priority: 0 })], ["b", "c", "a"]],
    ["keys by code unit, not locale", [pending("b"), pending("a"), pending("B"), pending("ä")], ["B", "a", "b", "ä"]],
    ["fractional createdAt (the comparator's path)", [pending("a", { createdAt: 1.5 }), pending("b", { createdAt: 1.25 })], ["b", "a"]],
    ["createdAt spans too wide for one integer (the comparator's path)", [pending("a", { priority: 1, createdAt: 2 ** 52 }), pending("b", { priority: 2, createdAt: 0 }), pending("c", { priority: 1, createdAt: 0 })], ["b", "c", "a"]],
    ["empty", [], []],
  ])("%s", (_name, queue, want) => {
    expect(keysInOrder(queue)).toEqual(want);
  });

  it("an already ordered queue keeps its positions", () => {
    const queue = [pending("a", { priority: 3 }), pending("b", { priority: 3, createdAt: 1 }), pending("c")];
    expect(Array.from(queuePositions(queue))).toEqual([0, 1, 2]);
  });

  it.each([1, 2, 3])("seed %d: the same order as sorting with queueOrder", (seed) => {
    const r = rng(seed);
    const queue = Array.from({ length: 3000 }, (_, i) =>
      pending(`k${Math.floor(r() * 1e6)}-${i}`, {
        priority: Math.floor(r() * 5) - 2,
        // Few distinct times, so that many executions tie on (priority, createdAt); one far back.
        createdAt: i === 7 ? 0 : 1_700_000_000_000 + Math.floor(r() * 20) * 70_000 + (r() < 0.01 ? 2 ** 34 : 0),
      }),
    );
    expect(keysInOrder(queue)).toEqual([...queue].sort(queueOrder).map((p) => p.key));
  });
});
