/** The health and metrics endpoints over real HTTP on 127.0.0.1. */
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { serveHealth } from "../../src/controller/health-server.ts";
import { ControllerMetrics } from "../../src/controller/metrics.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function start(state: { live: boolean; ready: boolean; leading: boolean }) {
  const metrics = new ControllerMetrics({
    queueDepth: () => 3,
    phases: () => new Map([["Running", 2], ["Succeeded", 5]]),
    leading: () => state.leading,
  });
  const server = await serveHealth("127.0.0.1", 0, { live: () => state.live, ready: () => state.ready, registry: metrics.registry });
  closers.push(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { metrics, get: async (path: string) => { const r = await fetch(base + path); return { status: r.status, body: await r.text() }; } };
}

describe("health server", () => {
  it("answers liveness and readiness from the controller's state", async () => {
    const state = { live: true, ready: false, leading: false };
    const { get } = await start(state);
    expect(await get("/healthz")).toEqual({ status: 200, body: "ok\n" });
    expect(await get("/readyz")).toEqual({ status: 503, body: "caches not synced\n" });
    state.ready = true;
    state.live = false;
    expect((await get("/readyz")).status).toBe(200);
    expect(await get("/healthz")).toEqual({ status: 503, body: "loops stalled\n" });
    expect((await get("/nope")).status).toBe(404);
  });

  it("exposes reconcile durations, queue depth, executions by phase and leadership", async () => {
    const state = { live: true, ready: true, leading: true };
    const { metrics, get } = await start(state);
    metrics.reconciled("OpExecution", 0.02, true);
    metrics.reconciled("OpTask", 2, false);
    const { status, body } = await get("/metrics");
    expect(status).toBe(200);
    expect(body).toMatch(/^odop_workqueue_depth 3$/m);
    expect(body).toMatch(/^odop_executions\{phase="Running"\} 2$/m);
    expect(body).toMatch(/^odop_executions\{phase="Paused"\} 0$/m);
    expect(body).toMatch(/^odop_leader 1$/m);
    expect(body).toMatch(/^odop_reconcile_duration_seconds_count\{kind="OpExecution",result="ok"\} 1$/m);
    expect(body).toMatch(/^odop_reconcile_duration_seconds_bucket\{le="1",kind="OpTask",result="error"\} 0$/m);
    expect(body).toMatch(/^odop_process_cpu_user_seconds_total /m); // prom-client default metrics
  });
});
