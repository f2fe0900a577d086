/**
 * Builders for scheduler inputs: only what a test case is about is spelled out.
 */
import type { ActiveExecution, NodeView, PendingExecution, SchedulerInput } from "../../src/scheduler/types.ts";
export { rng } from "../support/rng.ts";

export const GiB = 1024 ** 3;

export type NodeSpec = {
  /** Cores 0..cores-1 (default 8). */
  cores?: number;
  /** The harvestable ones (default all). */
  harvestable?: readonly number[];
  memory?: number;
  labels?: Record<string, string>;
  stale?: boolean;
};

export function node(name: string, spec: NodeSpec = {}): NodeView {
  const count = spec.cores ?? 8;
  const harvestable = new Set(spec.harvestable ?? Array.from({ length: count }, (_, i) => i));
  return {
    name,
    cores: Array.from({ length: count }, (_, id) => ({ id, mainUsage: harvestable.has(id) ? 0 : 1, harvestable: harvestable.has(id) })),
    memoryAvailableBytes: spec.memory ?? 64 * GiB,
    labels: spec.labels ?? {},
    stale: spec.stale ?? false,
  };
}

export function pending(key: string, over: Partial<PendingExecution> = {}): PendingExecution {
  return { key, task: "t", priority: 0, createdAt: 0, cores: { min: 1, max: 1 }, memoryBytes: 0, ...over };
}

export function active(key: string, nodeName: string, cores: readonly number[], over: Partial<ActiveExecution> = {}): ActiveExecution {
  return {
    key,
    task: "t",
    node: nodeName,
    cores,
    priority: 0,
    onContention: "pause",
    pausedByScheduler: false,
    pausedByUser: false,
    memoryBytes: 0,
    ...over,
  };
}

export function input(parts: Partial<SchedulerInput>): SchedulerInput {
  return { nodes: [], active: [], pending: [], concurrency: new Map(), ...parts };
}

