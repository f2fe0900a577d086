/**
 * The controller's Prometheus metrics (prom-client): how long reconciles take, how deep
 * the work queue is, and how many executions are in each phase. Gauges are computed
 * when scraped, from the engine's caches, so nothing is counted twice or goes stale.
 */
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { EXECUTION_PHASES } from "../api/opexecution.ts";

export type MetricSources = {
  queueDepth: () => number;
  phases: () => ReadonlyMap<string, number>;
  leading: () => boolean;
};

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly #reconcile: Histogram<"kind" | "result">;

  constructor(sources: MetricSources) {
    collectDefaultMetrics({ register: this.registry, prefix: "odop_" });
    this.#reconcile = new Histogram({
      name: "odop_reconcile_duration_seconds",
      help: "Time one reconcile took, by kind and result (ok, error).",
      labelNames: ["kind", "result"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.registry],
    });
    new Gauge({
      name: "odop_workqueue_depth",
      help: "Keys waiting in the work queue.",
      registers: [this.registry],
      collect() {
        this.set(sources.queueDepth());
      },
    });
    new Gauge({
      name: "odop_executions",
      help: "OpExecutions known to this controller, by phase.",
      labelNames: ["phase"],
      registers: [this.registry],
      collect() {
        const counts = sources.phases();
        for (const phase of EXECUTION_PHASES) this.set({ phase }, counts.get(phase) ?? 0);
      },
    });
    new Gauge({
      name: "odop_leader",
      help: "1 when this replica is the one acting, 0 on standby.",
      registers: [this.registry],
      collect() {
        this.set(sources.leading() ? 1 : 0);
      },
    });
  }

  reconciled(kind: "OpTask" | "OpExecution", seconds: number, ok: boolean): void {
    this.#reconcile.observe({ kind, result: ok ? "ok" : "error" }, seconds);
  }
}
