/**
 * The controller's replicas on the test control plane, as deploy/ runs them (leader
 * election on, a Lease in the controller's namespace): a replica SIGKILLed mid-execution
 * and restarted adopts what runs; of two replicas one acts; killing the leader hands
 * over; a leader cut off from the API server stops acting before another takes over.
 */
import { CoordinationV1Api, CoreV1Api, Watch } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cluster, unavailable } from "../support/cluster.ts";
import { eventually } from "../support/engine.ts";
import { type ControllerProcess, type DeployedController, deployedController, deleteKwokNodes, healthStatus, kubectl, kwokNodes, RESTRICTED, suiteId, workNamespace } from "../support/k8s/fixtures.ts";
import { startHangProxy } from "../support/k8s/hang-proxy.ts";

const probe = cluster();
/** The elector's defaults (src/store/leader-election.ts). */
const LEASE_DURATION_MS = 15_000;
const RETRY_PERIOD_MS = 2_000;


/** When (pino's time, ms) a replica logged `msg`, or undefined. */
function loggedAt(replica: ControllerProcess, msg: string): number | undefined {
  for (const line of replica.output().split("\n")) {
    if (!line.includes(`"msg":"${msg}"`)) continue;
    const time = (JSON.parse(line) as { time?: number }).time;
    if (time !== undefined) return time;
  }
  return undefined;
}

const isLeading = (replica: ControllerProcess) => loggedAt(replica, "leading: reconciling") !== undefined;

if (!probe.ok) {
  unavailable("odop controller replicas on the test control plane", "lead one at a time and hand over", probe.reason);
} else {
  const { kubeConfig } = probe;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const leases = kubeConfig.makeApiClient(CoordinationV1Api);
  const suite = suiteId("lead");
  const namespace = `${suite}-work`;
  let deployed: DeployedController;
  const running: ControllerProcess[] = [];

  const start = async (identity: string, server?: string) => {
    const replica = await deployed.start(identity, {}, server === undefined ? {} : { server });
    running.push(replica);
    return replica;
  };
  const work = workNamespace(kubeConfig, suite, namespace);
  const task = (name: string, image: string) => work.createTask(name, { image });
  const execution = work.createExecution;
  const phaseIs = work.phaseIs;
  const lease = () => leases.readNamespacedLease({ namespace: deployed.namespace, name: "odop-controller" });

  /** Every pod created in the work namespace, by uid, as a watch sees them. */
  const createdPods = new Map<string, string>();
  let stopWatch: (() => void) | undefined;

  describe(`odop controller replicas on ${probe.server}`, () => {
    beforeAll(async () => {
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { "app.kubernetes.io/part-of": "odop-tests", ...RESTRICTED } } } });
      await kwokNodes(kubeConfig, suite, 2, { cpu: 4 });
      deployed = await deployedController(probe, suite, namespace);
      const request = await new Watch(kubeConfig).watch(`/api/v1/namespaces/${namespace}/pods`, {}, (type, pod: { metadata?: { uid?: string; name?: string } }) => {
        if (type === "ADDED" && pod.metadata?.uid !== undefined) createdPods.set(pod.metadata.uid, pod.metadata.name ?? "");
      }, () => undefined);
      stopWatch = () => request.abort();
    }, 120_000);
    afterEach(async () => {
      await Promise.all(running.splice(0).map((r) => r.stop()));
    }, 30_000);
    afterAll(async () => {
      stopWatch?.();
      await deployed?.cleanup();
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
      await deleteKwokNodes(kubeConfig, suite).catch(() => undefined);
    }, 60_000);

    it("adopts a running execution after a SIGKILL and a restart: one pod, one attempt, Succeeded", { timeout: 120_000 }, async () => {
      const first = await start(`${suite}-a`);
      await eventually(() => (isLeading(first) ? true : undefined), "replica a leading", 30_000);
      await task("long", "odop.test/run:run-8s");
      await execution("long-1", "long");
      await phaseIs("long-1", ["Running"]);
      await eventually(async () => ((await core.listNamespacedPod({ namespace, labelSelector: "odop.io/execution=long-1" })).items.length === 1 ? true : undefined), "long-1's pod");
      first.child.kill("SIGKILL");
      await first.exited;
      // The same pod name comes back (a container restart): it holds the Lease already.
      const again = await start(`${suite}-a`);
      await eventually(() => (isLeading(again) ? true : undefined), "replica a leading again", 30_000);
      const done = await phaseIs("long-1", ["Succeeded", "Failed", "Cancelled"], 60_000);
      expect([done.status?.phase, done.status?.attempts]).toEqual(["Succeeded", 1]);
      expect([...createdPods.values()].filter((n) => n.startsWith("long-1-"))).toEqual(["long-1-1"]);
    });

    it("lets one of two replicas act, with a valid Lease, and hands over when the leader is killed", { timeout: 120_000 }, async () => {
      const a = await start(`${suite}-b1`);
      const b = await start(`${suite}-b2`);
      const leader = await eventually(() => (isLeading(a) ? a : isLeading(b) ? b : undefined), "a leader", 40_000);
      const standby = leader === a ? b : a;
      // Both are ready: the standby because its Lease attempts get answers.
      for (const r of [a, b]) await eventually(async () => ((await healthStatus(r.httpPort, "/readyz")) === 200 ? true : undefined), `${r.identity} ready`);
      const held = await lease();
      expect(held.spec?.holderIdentity).toBe(leader.identity);
      expect(held.spec?.leaseDurationSeconds).toBe(LEASE_DURATION_MS / 1000);
      // MicroTime: the server keeps six fraction digits.
      const raw = JSON.parse(await kubectl(probe.kubeconfigPath, ["get", "lease", "odop-controller", "-n", deployed.namespace, "-o", "json"])) as { spec: { renewTime: string; acquireTime: string } };
      expect(raw.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(raw.spec.acquireTime).toMatch(/\.\d{6}Z$/);
      const metrics = async (r: ControllerProcess) => (await fetch(`http://127.0.0.1:${r.httpPort}/metrics`)).text();
      expect(await metrics(leader)).toMatch(/^odop_leader 1$/m);
      expect(await metrics(standby)).toMatch(/^odop_leader 0$/m);

      await task("two", "odop.test/run:exit-0");
      await execution("two-1", "two");
      await phaseIs("two-1", ["Succeeded"]);
      expect(leader.output()).toContain('"msg":"stage pod created"');
      expect(standby.output()).not.toContain('"msg":"stage pod created"');
      expect(standby.output()).not.toContain('"msg":"execution status written"');

      leader.child.kill("SIGKILL");
      const killedAt = Date.now();
      await eventually(() => (isLeading(standby) ? true : undefined), "the standby leading", LEASE_DURATION_MS + 3 * RETRY_PERIOD_MS + 20_000);
      const tookOver = loggedAt(standby, "leading: reconciling") ?? 0;
      // It waited for the Lease to expire (measured on its own clock from the last renew it saw).
      expect(tookOver - killedAt).toBeGreaterThan(LEASE_DURATION_MS - 2 * RETRY_PERIOD_MS);
      expect((await lease()).spec?.holderIdentity).toBe(standby.identity);
      expect((await lease()).spec?.leaseTransitions).toBeGreaterThanOrEqual(1);
      await task("after", "odop.test/run:exit-0");
      await execution("after-1", "after");
      await phaseIs("after-1", ["Succeeded"]);
    });

    it("makes a leader cut off from the API server stop acting before another replica takes over", { timeout: 120_000 }, async () => {
      const url = new URL(probe.server);
      const proxy = await startHangProxy({ host: url.hostname, port: Number(url.port) });
      try {
        const cutOff = await start(`${suite}-c1`, proxy.url);
        await eventually(() => (isLeading(cutOff) ? true : undefined), "the proxied replica leading", 40_000);
        const other = await start(`${suite}-c2`);
        await eventually(async () => ((await healthStatus(other.httpPort, "/readyz")) === 200 ? true : undefined), "the other replica ready (standing by)");
        proxy.hang();
        const code = await cutOff.exited;
        expect(code).toBe(1);
        expect(cutOff.output()).toContain('"msg":"lost the lease: stopping"');
        await eventually(() => (isLeading(other) ? true : undefined), "the other replica leading", LEASE_DURATION_MS + 3 * RETRY_PERIOD_MS + 20_000);
        // The order is the guarantee: the cut-off leader had stopped before the other one started.
        const lostAt = loggedAt(cutOff, "lost the lease: stopping") ?? Infinity;
        const tookOver = loggedAt(other, "leading: reconciling") ?? -Infinity;
        expect(lostAt).toBeLessThan(tookOver);
      } finally {
        proxy.resume();
        await proxy.close();
      }
    });
  });
}
