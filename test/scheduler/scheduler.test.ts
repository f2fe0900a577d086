import { describe, expect, it } from "vitest";
import { schedule } from "../../src/scheduler/scheduler.ts";
import type { Decision, SchedulerInput } from "../../src/scheduler/types.ts";
import { GiB, active, input, node, pending } from "./fixtures.ts";

type Case = [name: string, given: SchedulerInput, want: Decision[]];

const start = (key: string, nodeName: string, cores: number[]): Decision => ({ type: "start", key, node: nodeName, cores });

describe("schedule: the queue", () => {
  it.each<Case>([
    [
      "higher priority first, though created later",
      input({
        nodes: [node("n1", { cores: 2 })],
        pending: [pending("a", { cores: { min: 2, max: 2 } }), pending("b", { priority: 5, createdAt: 10, cores: { min: 2, max: 2 } })],
      }),
      [start("b", "n1", [0, 1])],
    ],
    [
      "first created first among equal priorities",
      input({
        nodes: [node("n1", { cores: 2 })],
        pending: [pending("a", { createdAt: 20, cores: { min: 2, max: 2 } }), pending("b", { createdAt: 10, cores: { min: 2, max: 2 } })],
      }),
      [start("b", "n1", [0, 1])],
    ],
    [
      "by key among equal priority and creation time",
      input({
        nodes: [node("n1", { cores: 2 })],
        pending: [pending("b", { cores: { min: 2, max: 2 } }), pending("a", { cores: { min: 2, max: 2 } })],
      }),
      [start("a", "n1", [0, 1])],
    ],
    [
      "a lower-priority execution that fits still starts after a bigger one that does not",
      input({
        nodes: [node("n1", { cores: 2 })],
        pending: [pending("big", { priority: 9, cores: { min: 4, max: 4 } }), pending("small")],
      }),
      [start("small", "n1", [0])],
    ],
    [
      "concurrency counts active executions, paused ones included, and this round's starts",
      input({
        nodes: [node("n1")],
        active: [active("x", "n1", [7], { pausedByUser: true }), active("y", "n1", [6], { task: "other" })],
        pending: [pending("a"), pending("b"), pending("c", { task: "other" })],
        concurrency: new Map([["t", 2]]),
      }),
      [start("a", "n1", [0]), start("c", "n1", [1])],
    ],
    ["concurrency 0 starts nothing", input({ nodes: [node("n1")], pending: [pending("a")], concurrency: new Map([["t", 0]]) }), []],
  ])("%s", (_name, given, want) => {
    expect(schedule(given)).toEqual(want);
  });
});

describe("schedule: cores and memory", () => {
  it.each<Case>([
    [
      "takes up to cores.max of the free cores",
      input({ nodes: [node("n1", { harvestable: [0, 1, 2, 3] })], pending: [pending("a", { cores: { min: 2, max: 8 } })] }),
      [start("a", "n1", [0, 1, 2, 3])],
    ],
    [
      "stops at cores.max",
      input({ nodes: [node("n1")], pending: [pending("a", { cores: { min: 2, max: 3 } })] }),
      [start("a", "n1", [0, 1, 2])],
    ],
    [
      "fewer free cores than cores.min: nothing",
      input({ nodes: [node("n1", { harvestable: [0, 1, 2, 3] })], pending: [pending("a", { cores: { min: 5, max: 8 } })] }),
      [],
    ],
    [
      "cores of running and person-paused executions are not free",
      input({
        nodes: [node("n1", { harvestable: [0, 1, 2, 3, 4] })],
        active: [active("r", "n1", [0, 1], { task: "r" }), active("u", "n1", [4, 5], { task: "u", pausedByUser: true })],
        pending: [pending("a", { cores: { min: 1, max: 8 } })],
      }),
      [start("a", "n1", [2, 3])],
    ],
    [
      "contiguous ids from the smallest run that holds them",
      input({
        nodes: [node("n1", { harvestable: [0, 1, 3, 4, 5, 6] })],
        pending: [pending("a", { cores: { min: 3, max: 3 } }), pending("b", { cores: { min: 2, max: 2 } })],
      }),
      [start("a", "n1", [3, 4, 5]), start("b", "n1", [0, 1])],
    ],
    [
      "the lowest ids when no run is long enough",
      input({ nodes: [node("n1", { harvestable: [0, 2, 4, 6, 7] })], pending: [pending("a", { cores: { min: 3, max: 3 } })] }),
      [start("a", "n1", [0, 2, 4])],
    ],
    [
      "memory: only a node with enough left",
      input({
        nodes: [node("n1", { cores: 2, memory: GiB }), node("n2", { memory: 8 * GiB })],
        pending: [pending("a", { memoryBytes: 4 * GiB })],
      }),
      [start("a", "n2", [0])],
    ],
    [
      "memory: what this round placed is gone",
      input({
        nodes: [node("n1", { memory: 8 * GiB })],
        pending: [pending("a", { memoryBytes: 6 * GiB }), pending("b", { memoryBytes: 6 * GiB }), pending("c", { memoryBytes: 2 * GiB })],
      }),
      [start("a", "n1", [0]), start("c", "n1", [1])],
    ],
    [
      "memory: exactly what is left fits",
      input({ nodes: [node("n1", { memory: 8 * GiB })], pending: [pending("a", { memoryBytes: 8 * GiB })] }),
      [start("a", "n1", [0])],
    ],
  ])("%s", (_name, given, want) => {
    expect(schedule(given)).toEqual(want);
  });
});

describe("schedule: placement", () => {
  it.each<Case>([
    [
      "best fit: the node with the fewest free cores that still fits",
      input({
        nodes: [node("n1"), node("n2", { harvestable: [0, 1, 2] }), node("n3", { harvestable: [0, 1] })],
        pending: [pending("a", { cores: { min: 3, max: 3 } })],
      }),
      [start("a", "n2", [0, 1, 2])],
    ],
    [
      "best fit packs: the node already used is the tighter one next",
      input({
        nodes: [node("n1", { cores: 4 }), node("n2", { cores: 4 })],
        pending: [pending("a"), pending("b"), pending("c", { cores: { min: 4, max: 4 } })],
      }),
      [start("a", "n1", [0]), start("b", "n1", [1]), start("c", "n2", [0, 1, 2, 3])],
    ],
    [
      "best fit skips a tighter node without the memory",
      input({
        nodes: [node("n1", { cores: 2, memory: GiB }), node("n2", { cores: 4 }), node("n3", { cores: 8 })],
        pending: [pending("a", { memoryBytes: 2 * GiB })],
      }),
      [start("a", "n2", [0])],
    ],
    [
      "nodeSelector: only matching nodes, even when another fits better",
      input({
        nodes: [node("n1", { cores: 2, labels: { gpu: "no" } }), node("n2", { labels: { gpu: "yes", zone: "a" } })],
        pending: [pending("a", { nodeSelector: { gpu: "yes" } }), pending("b", { nodeSelector: { gpu: "yes", zone: "b" } })],
      }),
      [start("a", "n2", [0])],
    ],
    [
      "nodeSelector: placements count across executions that share a selector and those without",
      input({
        nodes: [node("n1", { cores: 2, labels: { gpu: "yes" } }), node("n2", { cores: 2, labels: { gpu: "yes" } })],
        pending: [pending("a", { priority: 2 }), pending("b", { priority: 1, nodeSelector: { gpu: "yes" }, cores: { min: 2, max: 2 } })],
      }),
      [start("a", "n1", [0]), start("b", "n2", [0, 1])],
    ],
    [
      "node: only that node",
      input({ nodes: [node("n1", { cores: 2 }), node("n2")], pending: [pending("a", { node: "n2" })] }),
      [start("a", "n2", [0])],
    ],
    [
      "node: unknown, too small or not matching the selector gives nothing",
      input({
        nodes: [node("n1", { cores: 2, labels: { gpu: "no" } })],
        pending: [
          pending("a", { node: "gone" }),
          pending("b", { node: "n1", cores: { min: 3, max: 3 } }),
          pending("c", { node: "n1", nodeSelector: { gpu: "yes" } }),
        ],
      }),
      [],
    ],
  ])("%s", (_name, given, want) => {
    expect(schedule(given)).toEqual(want);
  });
});

describe("schedule: contention, pause and resume", () => {
  it.each<Case>([
    ...(["pause", "requeue", "cancel"] as const).map((policy): Case => [
      `a running execution on a reclaimed core: ${policy}`,
      input({ nodes: [node("n1", { harvestable: [0, 2, 3] })], active: [active("a", "n1", [0, 1], { onContention: policy })] }),
      [{ type: policy, key: "a", reason: "CoresReclaimed" }],
    ]),
    [
      "all its cores harvestable: left running",
      input({ nodes: [node("n1", { harvestable: [0, 1] })], active: [active("a", "n1", [0, 1])] }),
      [],
    ],
    [
      "a core the node no longer lists counts as reclaimed",
      input({ nodes: [node("n1", { cores: 2 })], active: [active("a", "n1", [1, 2], { onContention: "cancel" })] }),
      [{ type: "cancel", key: "a", reason: "CoresReclaimed" }],
    ],
    [
      "a core id no node can have counts as reclaimed",
      input({
        nodes: [node("n1", { cores: 2 })],
        active: [active("a", "n1", [0, 70_000], { onContention: "cancel" }), active("b", "n1", [1.5], { task: "x", onContention: "requeue" })],
      }),
      [
        { type: "cancel", key: "a", reason: "CoresReclaimed" },
        { type: "requeue", key: "b", reason: "CoresReclaimed" },
      ],
    ],
    [
      "reclaimed executions come out by key",
      input({
        nodes: [node("n1", { harvestable: [] })],
        active: [active("c", "n1", [2]), active("a", "n1", [0], { onContention: "requeue" }), active("b", "n1", [1], { onContention: "cancel" })],
      }),
      [
        { type: "requeue", key: "a", reason: "CoresReclaimed" },
        { type: "cancel", key: "b", reason: "CoresReclaimed" },
        { type: "pause", key: "c", reason: "CoresReclaimed" },
      ],
    ],
    [
      "the cores of an execution taken back stay held this round",
      input({
        nodes: [node("n1", { cores: 4, harvestable: [0, 2] })],
        active: [active("a", "n1", [0, 1], { task: "x", onContention: "requeue" })],
        pending: [pending("b", { cores: { min: 1, max: 4 } })],
      }),
      [{ type: "requeue", key: "a", reason: "CoresReclaimed" }, start("b", "n1", [2])],
    ],
    [
      "paused by a person: never touched, and keeps its cores",
      input({
        nodes: [node("n1", { cores: 4, harvestable: [0, 2, 3] })],
        active: [active("a", "n1", [0, 1], { task: "x", pausedByUser: true, pausedByScheduler: true })],
        pending: [pending("b", { cores: { min: 1, max: 4 } })],
      }),
      [start("b", "n1", [2, 3])],
    ],
    [
      "resume on its own cores",
      input({ nodes: [node("n1", { cores: 4 })], active: [active("a", "n1", [2, 3], { pausedByScheduler: true })] }),
      [{ type: "resume", key: "a", cores: [2, 3] }],
    ],
    [
      "resume re-pinned: its own free cores, others of the node for the rest",
      input({
        nodes: [node("n1", { harvestable: [0, 1, 2, 4, 5] })],
        active: [active("a", "n1", [2, 3], { pausedByScheduler: true })],
      }),
      [{ type: "resume", key: "a", cores: [0, 2] }],
    ],
    [
      "resume re-pinned away from cores others hold",
      input({
        nodes: [node("n1", { cores: 6 })],
        active: [active("a", "n1", [0, 1], { pausedByScheduler: true }), active("b", "n1", [0, 1], { task: "x" })],
      }),
      [{ type: "resume", key: "a", cores: [2, 3] }],
    ],
    [
      "no resume without enough cores; its free ones go to others",
      input({
        nodes: [node("n1", { cores: 4, harvestable: [2] })],
        active: [active("a", "n1", [2, 3], { task: "x", pausedByScheduler: true })],
        pending: [pending("b")],
      }),
      [start("b", "n1", [2])],
    ],
    [
      "resumes come before starts, highest priority first",
      input({
        nodes: [node("n1", { cores: 3 })],
        active: [
          active("low", "n1", [0, 1], { task: "x", pausedByScheduler: true }),
          active("high", "n1", [1, 2], { task: "x", priority: 5, pausedByScheduler: true }),
        ],
        pending: [pending("p", { priority: 9 })],
      }),
      [{ type: "resume", key: "high", cores: [1, 2] }, start("p", "n1", [0])],
    ],
  ])("%s", (_name, given, want) => {
    expect(schedule(given)).toEqual(want);
  });
});

describe("schedule: stale nodes", () => {
  it.each<Case>([
    [
      "nothing new starts on a stale node, even one that shows free cores",
      input({ nodes: [node("n1", { stale: true }), node("n2", { cores: 16 })], pending: [pending("a"), pending("b", { node: "n1" })] }),
      [start("a", "n2", [0])],
    ],
    [
      "running work on a stale node is left to its backend",
      input({ nodes: [node("n1", { stale: true, harvestable: [] })], active: [active("a", "n1", [0], { onContention: "cancel" })] }),
      [],
    ],
    [
      "running work on a node missing from the input is left alone",
      input({ nodes: [], active: [active("a", "gone", [0], { onContention: "cancel" })] }),
      [],
    ],
    [
      "a paused execution on a stale node is not resumed",
      input({ nodes: [node("n1", { stale: true })], active: [active("a", "n1", [0], { pausedByScheduler: true })] }),
      [],
    ],
  ])("%s", (_name, given, want) => {
    expect(schedule(given)).toEqual(want);
  });
});
