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
 * - Every Lease request has a deadline (leaseClientFor's timeoutMs), and a watchdog
 *   armed at each renew ends the leadership renewDeadline after it, whatever requests
 *   are still hanging: a leader cut off from the API server stops acting within the
 *   renew deadline, leaseDuration − renewDeadline before another replica can take over.
 * - A replica that stopped leading never leads again (the controller exits and is
 *   restarted clean): an answer that arrives late cannot make it act once more.
 * - renewTime and acquireTime are MicroTime: the API server parses exactly six fraction
 *   digits and refuses a JavaScript Date's three (400), so they go out as V1MicroTime.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from "@kubernetes/client-node";
import { timeoutOptions } from "./kubernetes-request.ts";

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
  #answered = false;
  /** The Lease as last seen, and when (our clock) it last changed. */
  #observed: { record: string; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #stopped = false;
  #lost = false;

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

  /**
   * Whether the last attempt got an answer from the API server (the Lease acquired,
   * renewed, or held by another replica), as opposed to an error: a replica whose every
   * attempt fails can never lead, and says so through its readiness.
   */
  get healthy(): boolean {
    return this.#answered;
  }

  /** Runs the election loop until stop(). */
  start(): void {
    const loop = async () => {
      if (this.#stopped || this.#lost) return;
      await this.tryOnce();
      if (!this.#stopped && !this.#lost) this.#timer = setTimeout(() => void loop(), this.#o.retryPeriodMs);
    };
    void loop();
  }

  /** One attempt to acquire or renew; exposed for tests. */
  async tryOnce(): Promise<void> {
    if (this.#lost) return;
    const now = this.#o.now();
    try {
      const acquired = await this.#acquireOrRenew(now);
      this.#answered = true;
      if (this.#lost) return;
      if (acquired) {
        this.#lastRenew = now;
        this.#armWatchdog();
        if (!this.#leading) {
          this.#leading = true;
          this.#o.onStartedLeading();
        }
        return;
      }
    } catch (error) {
      this.#answered = false;
      this.#o.onError?.(error);
    }
    // Measured now, after the attempt: an attempt that hung until its timeout counts.
    if (this.#leading && this.#o.now() - this.#lastRenew >= this.#o.renewDeadlineMs) this.#lose();
    else if (this.#leading && !(await this.#stillOurs())) this.#lose();
  }

  /** Stops the loop; a leader gives the Lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (!this.#leading) {
      this.#lost = true;
      return;
    }
    this.#lose();
    try {
      const lease = await this.#o.client.get(this.#o.namespace, this.#o.name);
      if (lease?.spec?.holderIdentity === this.#o.identity) {
        await this.#o.client.replace(this.#o.namespace, { ...lease, spec: { ...lease.spec, holderIdentity: "", renewTime: new V1MicroTime(this.#o.now()) } });
      }
    } catch (error) {
      this.#o.onError?.(error);
    }
  }

  #lose(): void {
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#lost = true;
    this.#leading = false;
    this.#o.onStoppedLeading();
  }

  /** Ends the leadership renewDeadline after this renew unless another renew comes first. */
  #armWatchdog(): void {
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => {
      if (this.#leading) this.#lose();
    }, this.#o.renewDeadlineMs);
    this.#watchdog.unref();
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
      renewTime: new V1MicroTime(now),
    };
    if (current === undefined) {
      try {
        await client.create(namespace, { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec: { ...spec, acquireTime: new V1MicroTime(now), leaseTransitions: 0 } });
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
        spec: { ...current.spec, ...spec, leaseTransitions: transitions, ...(holder === identity ? {} : { acquireTime: new V1MicroTime(now) }) },
      });
      return true;
    } catch (error) {
      if (error instanceof LeaseConflict) return false;
      throw error;
    }
  }
}

/** The LeaseClient of a real cluster; each request is aborted after `timeoutMs`. */
export function leaseClientFor(kubeConfig: KubeConfig, timeoutMs: number): LeaseClient {
  const api = kubeConfig.makeApiClient(CoordinationV1Api);
  const code = (error: unknown): number | undefined => (error as { code?: number }).code;
  const options = () => timeoutOptions(timeoutMs);
  return {
    async get(namespace, name) {
      try {
        return await api.readNamespacedLease({ namespace, name }, options());
      } catch (error) {
        if (code(error) === 404) return undefined;
        throw error;
      }
    },
    async create(namespace, lease) {
      try {
        return await api.createNamespacedLease({ namespace, body: lease }, options());
      } catch (error) {
        if (code(error) === 409) throw new LeaseConflict("the Lease was created by another replica", { cause: error });
        throw error;
      }
    },
    async replace(namespace, lease) {
      try {
        return await api.replaceNamespacedLease({ namespace, name: lease.metadata?.name ?? "", body: lease }, options());
      } catch (error) {
        if (code(error) === 409) throw new LeaseConflict("the Lease changed since it was read", { cause: error });
        throw error;
      }
    },
  };
}
