/**
 * Leader election on a coordination.k8s.io/v1 Lease, so that of several controller
 * replicas exactly one acts. The algorithm is client-go's:
 *
 * - A candidate takes the Lease when it does not exist, when it is already the holder,
 *   or when the holder has not renewed it for leaseDuration (measured on the
 *   candidate's own clock from when it last saw the Lease change, never by comparing
 *   clocks across machines).
 * - Every write carries the resourceVersion it read: of two candidates racing, the API
 *   server accepts one and answers 409 to the other.
 * - The leader renews every retryPeriod; when it cannot renew within renewDeadline it
 *   stops acting (onStoppedLeading) before another replica may take over
 *   (renewDeadline < leaseDuration), so two replicas never act at once.
 * - On a graceful stop the leader releases the Lease (empty holder), for a fast
 *   hand-over.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from "@kubernetes/client-node";

/** The few Lease operations the elector needs; the Kubernetes one is leaseClientFor(). */
export interface LeaseClient {
  get(namespace: string, name: string): Promise<V1Lease | undefined>;
  create(namespace: string, lease: V1Lease): Promise<V1Lease>;
  /** Replaces the Lease; rejects with a LeaseConflict when lease.metadata.resourceVersion is stale. */
  replace(namespace: string, lease: V1Lease): Promise<V1Lease>;
}

export class LeaseConflict extends Error {
  override name = "LeaseConflict";
}

export type ElectorOptions = {
  client: LeaseClient;
  namespace: string;
  name: string;
  /** This replica's identity (pod name). */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  now?: () => number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (error: unknown) => void;
};

export class LeaderElector {
  readonly #o: Required<Omit<ElectorOptions, "onError">> & Pick<ElectorOptions, "onError">;
  #leading = false;
  #lastRenew = 0;
  /** The Lease as last seen, and when (our clock) it last changed. */
  #observed: { record: string; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: ElectorOptions) {
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      now: Date.now,
      ...options,
    };
    if (!(this.#o.renewDeadlineMs < this.#o.leaseDurationMs)) throw new RangeError("renewDeadline must be shorter than leaseDuration");
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Runs the election loop until stop(). */
  start(): void {
    const loop = async () => {
      if (this.#stopped) return;
      await this.tryOnce();
      if (!this.#stopped) this.#timer = setTimeout(() => void loop(), this.#o.retryPeriodMs);
    };
    void loop();
  }

  /** One attempt to acquire or renew; exposed for tests. */
  async tryOnce(): Promise<void> {
    const now = this.#o.now();
    try {
      const acquired = await this.#acquireOrRenew(now);
      if (acquired) {
        this.#lastRenew = now;
        if (!this.#leading) {
          this.#leading = true;
          this.#o.onStartedLeading();
        }
        return;
      }
    } catch (error) {
      this.#o.onError?.(error);
    }
    if (this.#leading && now - this.#lastRenew >= this.#o.renewDeadlineMs) this.#lose();
    else if (this.#leading && !(await this.#stillOurs())) this.#lose();
  }

  /** Stops the loop; a leader gives the Lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (!this.#leading) return;
    this.#lose();
    try {
      const lease = await this.#o.client.get(this.#o.namespace, this.#o.name);
      if (lease?.spec?.holderIdentity === this.#o.identity) {
        await this.#o.client.replace(this.#o.namespace, { ...lease, spec: { ...lease.spec, holderIdentity: "", renewTime: new Date(this.#o.now()) } });
      }
    } catch (error) {
      this.#o.onError?.(error);
    }
  }

  #lose(): void {
    this.#leading = false;
    this.#o.onStoppedLeading();
  }

  async #stillOurs(): Promise<boolean> {
    try {
      const lease = await this.#o.client.get(this.#o.namespace, this.#o.name);
      return lease?.spec?.holderIdentity === this.#o.identity;
    } catch {
      return true; // cannot tell: the renew deadline decides
    }
  }

  async #acquireOrRenew(now: number): Promise<boolean> {
    const { client, namespace, name, identity } = this.#o;
    const current = await client.get(namespace, name);
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
      renewTime: new Date(now),
    };
    if (current === undefined) {
      try {
        await client.create(namespace, { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec: { ...spec, acquireTime: new Date(now), leaseTransitions: 0 } });
        return true;
      } catch (error) {
        if (error instanceof LeaseConflict) return false;
        throw error;
      }
    }
    const holder = current.spec?.holderIdentity ?? "";
    const record = JSON.stringify([holder, current.spec?.renewTime, current.metadata?.resourceVersion]);
    if (this.#observed?.record !== record) this.#observed = { record, at: now };
    const expired = holder === "" || now - this.#observed.at >= this.#o.leaseDurationMs;
    if (holder !== identity && !expired) return false;
    const transitions = (current.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    try {
      await client.replace(namespace, {
        ...current,
        spec: { ...current.spec, ...spec, leaseTransitions: transitions, ...(holder === identity ? {} : { acquireTime: new Date(now) }) },
      });
      return true;
    } catch (error) {
      if (error instanceof LeaseConflict) return false;
      throw error;
    }
  }
}

/** The LeaseClient of a real cluster. */
export function leaseClientFor(kubeConfig: KubeConfig): LeaseClient {
  const api = kubeConfig.makeApiClient(CoordinationV1Api);
  const code = (error: unknown): number | undefined => (error as { code?: number }).code;
  return {
    async get(namespace, name) {
      try {
        return await api.readNamespacedLease({ namespace, name });
      } catch (error) {
        if (code(error) === 404) return undefined;
        throw error;
      }
    },
    async create(namespace, lease) {
      try {
        return await api.createNamespacedLease({ namespace, body: lease });
      } catch (error) {
        if (code(error) === 409) throw new LeaseConflict("the Lease was created by another replica", { cause: error });
        throw error;
      }
    },
    async replace(namespace, lease) {
      try {
        return await api.replaceNamespacedLease({ namespace, name: lease.metadata?.name ?? "", body: lease });
      } catch (error) {
        if (code(error) === 409) throw new LeaseConflict("the Lease changed since it was read", { cause: error });
        throw error;
      }
    },
  };
}
