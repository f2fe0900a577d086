/**
 * Leader election logic with an in-memory Lease that behaves like the API server's
 * (resourceVersion checks, 409 on stale writes) and a fake clock: unit tests of the
 * algorithm. Against a real API server it runs in the controller's e2e lane.
 */
import type { V1Lease } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { LeaderElector, type LeaseClient, LeaseConflict } from "../../src/store/leader-election.ts";

class MemoryLeases implements LeaseClient {
  lease: V1Lease | undefined;
  version = 0;
  failing = new Set<string>();

  get(): Promise<V1Lease | undefined> {
    return Promise.resolve(this.lease === undefined ? undefined : structuredClone(this.lease));
  }

  create(_ns: string, lease: V1Lease): Promise<V1Lease> {
    if (this.lease !== undefined) return Promise.reject(new LeaseConflict("exists"));
    return Promise.resolve(this.#store(lease));
  }

  replace(_ns: string, lease: V1Lease): Promise<V1Lease> {
    const who = lease.spec?.holderIdentity ?? "";
    if (this.failing.has(who)) return Promise.reject(new Error("connection refused"));
    if (lease.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) return Promise.reject(new LeaseConflict("stale"));
    return Promise.resolve(this.#store(lease));
  }

  #store(lease: V1Lease): V1Lease {
    this.version += 1;
    this.lease = structuredClone({ ...lease, metadata: { ...lease.metadata, resourceVersion: String(this.version) } });
    return structuredClone(this.lease);
  }
}

function candidate(leases: MemoryLeases, identity: string, clock: { now: number }) {
  const log: string[] = [];
  const elector = new LeaderElector({
    client: leases,
    namespace: "odop-system",
    name: "odop-controller",
    identity,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    now: () => clock.now,
    onStartedLeading: () => log.push("started"),
    onStoppedLeading: () => log.push("stopped"),
  });
  return { elector, log };
}

/** Candidates a and b sharing one Lease and one clock at 0. */
function twoCandidates() {
  const leases = new MemoryLeases();
  const clock = { now: 0 };
  return { leases, clock, a: candidate(leases, "a", clock), b: candidate(leases, "b", clock) };
}

describe("LeaderElector", () => {
  it("lets one of two candidates lead and keeps it while it renews", async () => {
    const { leases, clock, a, b } = twoCandidates();
    for (let t = 0; t <= 60_000; t += 2_000) {
      clock.now = t;
      await a.elector.tryOnce();
      await b.elector.tryOnce();
      expect(a.elector.leading && b.elector.leading).toBe(false);
    }
    expect(a.elector.leading).toBe(true);
    expect(b.log).toEqual([]);
    expect(leases.lease?.spec?.holderIdentity).toBe("a");
  });

  it("hands over when the leader cannot renew, and never lets both act", async () => {
    const { leases, clock, a, b } = twoCandidates();
    await a.elector.tryOnce();
    await b.elector.tryOnce();
    leases.failing.add("a"); // a loses its connection to the API server
    let handedOverAt: number | undefined;
    for (let t = 2_000; t <= 40_000; t += 1_000) {
      clock.now = t;
      await a.elector.tryOnce();
      await b.elector.tryOnce();
      expect(a.elector.leading && b.elector.leading).toBe(false);
      if (b.elector.leading && handedOverAt === undefined) handedOverAt = t;
    }
    expect(a.log).toEqual(["started", "stopped"]);
    expect(b.log).toEqual(["started"]);
    expect(handedOverAt).toBeGreaterThanOrEqual(15_000);
    expect(leases.lease?.spec?.leaseTransitions).toBe(1);
  });

  it("releases the Lease on stop so another replica takes over at its next try", async () => {
    const { clock, a, b } = twoCandidates();
    await a.elector.tryOnce();
    await b.elector.tryOnce();
    await a.elector.stop();
    expect(a.log).toEqual(["started", "stopped"]);
    clock.now = 2_000;
    await b.elector.tryOnce();
    expect(b.elector.leading).toBe(true);
  });

  it("refuses a renew deadline that is not shorter than the lease", () => {
    expect(() => new LeaderElector({ client: new MemoryLeases(), namespace: "n", name: "l", identity: "a", leaseDurationMs: 10_000, renewDeadlineMs: 10_000, onStartedLeading: () => {}, onStoppedLeading: () => {} })).toThrow(/renewDeadline/);
  });
});
