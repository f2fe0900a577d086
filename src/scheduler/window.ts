/**
 * One node's recent samples and, per core, whether the main application has left it
 * to us. Pure state: the caller feeds samples (`add`) and asks for a view at a time of
 * its choosing (`view(now)`); nothing here reads a clock.
 *
 * Per core, a small state machine on the main application's use of it:
 *
 *   busy ──smoothed < idle──▶ holding ──held for holdMs──▶ harvestable
 *     ▲                          │                             │
 *     └──smoothed ≥ idle─────────┘                             │
 *     └──raw > busy (from any state, at once)──────────────────┘
 *
 * Between the two thresholds nothing changes state once harvestable (hysteresis: noise
 * of the main application between idle and busy must not make decisions flap), but it
 * does break a hold that has not completed yet: a core is released only after the
 * smoothed use stayed below idle for the whole hold window. A single raw sample above
 * busy takes the core back at once, without waiting for the average to catch up: the
 * main application comes first.
 */
import type { NodeSample } from "../api/sample.ts";
import type { CoreView, NodeView } from "./types.ts";

export type WindowConfig = {
  /** Smoothed main use below this (0..1) starts and keeps the hold window. */
  idleThreshold: number;
  /** Main use above this (0..1) takes the core back (see reclaimOn). */
  busyThreshold: number;
  /**
   * What is compared with busyThreshold. "raw": each sample, so a single burst of the
   * main application takes the core back at once (protects it from any interference).
   * "smoothed": the moving average, so only sustained use does; short bursts are left
   * to the kernel, which gives SCHED_IDLE stages no CPU while the application wants it.
   */
  reclaimOn: "raw" | "smoothed";
  /** How long the smoothed use must stay below idleThreshold before a core is released. */
  holdMs: number;
  /**
   * Half-life of the exponential moving average of main use, in milliseconds. We smooth
   * by half-life rather than by a fixed alpha because agents do not sample at exactly
   * 1 s: the weight of a sample is 1 − 2^(−Δt/halfLife), so a late sample counts for
   * more and the average means the same thing at any sampling rate. 1 s with 1 s
   * samples is alpha 0.5: one idle sample after full use gives 0.5, which does not
   * start a hold; a core that went idle from full use starts its hold after ~3 s.
   * 0 turns smoothing off (the raw value is used).
   */
  halfLifeMs: number;
  /** The node is stale when its newest sample is older than this at `now`. */
  staleAfterMs: number;
  /** Memory left to the node's own bursts: odop may use available − margin. */
  memoryMarginBytes: number;
  /** How many recent samples to keep (at least 1). */
  ringSize: number;
};

export const DEFAULT_WINDOW_CONFIG: Readonly<WindowConfig> = Object.freeze({
  idleThreshold: 0.15,
  busyThreshold: 0.5,
  reclaimOn: "raw",
  holdMs: 3000,
  halfLifeMs: 1000,
  staleAfterMs: 10_000,
  // 1 GiB: page cache and the main application's allocation bursts need room on a node
  // of hundreds of GiB, and the OOM killer does not know which process is opportunistic.
  memoryMarginBytes: 1024 ** 3,
  ringSize: 120,
});

const BUSY = 0;
const HOLDING = 1;
const HARVESTABLE = 2;

/**
 * One accepted sample as the ring keeps it. The per-core shares live in one Float32Array
 * (total, main, odop per core) and the core ids are shared with the previous record
 * while the node's set of cores does not change: 120 samples of 128 cores kept as
 * parsed JSON would be ~1 MB a node, ~5 GB for 5,000 nodes; this is ~0.2 MB a node.
 */
type SampleRecord = {
  time: number;
  intervalMs: number;
  memory: NodeSample["memory"];
  main: NodeSample["main"];
  ids: Uint16Array;
  shares: Float32Array;
};

export type NodeWindowOptions = {
  name: string;
  labels?: Readonly<Record<string, string>>;
  /** Fields left out take DEFAULT_WINDOW_CONFIG's. */
  config?: Partial<WindowConfig>;
};

export class NodeWindow {
  readonly name: string;
  readonly config: Readonly<WindowConfig>;
  #labels: Readonly<Record<string, string>>;

  // Per-core state, by position; #ids holds the core ids in ascending order, unique.
  #ids: Uint16Array = new Uint16Array(0);
  #smoothed: Float64Array = new Float64Array(0);
  #state: Uint8Array = new Uint8Array(0);
  #holdSince: Float64Array = new Float64Array(0);

  #ring: (SampleRecord | undefined)[];
  #next = 0; // ring slot the next record goes to
  #count = 0;
  #latest: SampleRecord | undefined;

  // view() is asked for once per decision round and samples come once a second: keep
  // the last view while nothing changed, keyed by whether it was stale.
  #cached: NodeView | undefined;
  #cachedStale = false;

  constructor(options: NodeWindowOptions) {
    this.name = options.name;
    this.#labels = options.labels ?? {};
    this.config = Object.freeze({ ...DEFAULT_WINDOW_CONFIG, ...options.config });
    checkConfig(this.config);
    this.#ring = new Array<SampleRecord | undefined>(this.config.ringSize).fill(undefined);
  }

  get labels(): Readonly<Record<string, string>> {
    return this.#labels;
  }

  setLabels(labels: Readonly<Record<string, string>>): void {
    this.#labels = labels;
    this.#cached = undefined;
  }

  /** Time of the newest accepted sample; undefined before the first one. */
  get latestTime(): number | undefined {
    return this.#latest?.time;
  }

  /**
   * Takes one sample of this node. Returns false, and changes nothing, for a sample not
   * newer than the newest one taken (a duplicate push or one that arrived late: the
   * state machine only moves forward in time). Throws on a sample of another node, a
   * caller's bug.
   */
  add(sample: NodeSample): boolean {
    if (sample.node !== this.name) {
      throw new Error(`sample of node ${JSON.stringify(sample.node)} given to the window of ${JSON.stringify(this.name)}`);
    }
    const previous = this.#latest;
    if (previous !== undefined && sample.time <= previous.time) return false;

    const cfg = this.config;
    // After a silence longer than the stale limit nothing is known about the cores in
    // between: start every core again from its raw value, in the busy state.
    const restart = previous === undefined || sample.time - previous.time > cfg.staleAfterMs;
    const dt = previous === undefined ? 0 : sample.time - previous.time;
    const alpha = cfg.halfLifeMs === 0 ? 1 : 1 - 2 ** (-dt / cfg.halfLifeMs);

    const cores = sample.cores;
    // Fast path: the same cores as last time, in ascending order (what agents send).
    // Otherwise map each sorted, de-duplicated id to its place in the sample and in the
    // old state (-1: a core we have not seen).
    let source: Int32Array | undefined;
    let old: Int32Array | undefined;
    if (!sameIds(this.#ids, cores)) ({ source, old } = this.#realign(cores));

    const n = this.#ids.length;
    const shares = new Float32Array(n * 3);
    const smoothed = this.#smoothed;
    const state = this.#state;
    const holdSince = this.#holdSince;
    // Reading old state by index while writing new arrays in place is safe only on the
    // fast path; #realign has already copied the old values to their new positions.
    for (let p = 0; p < n; p++) {
      const core = cores[source === undefined ? p : (source[p] ?? 0)];
      if (core === undefined) continue;
      shares[p * 3] = core.total;
      shares[p * 3 + 1] = core.main;
      shares[p * 3 + 2] = core.odop;
      const raw = core.main;
      const known = !restart && (old === undefined || (old[p] ?? -1) >= 0);
      const s = known ? (smoothed[p] ?? raw) + alpha * (raw - (smoothed[p] ?? raw)) : raw;
      smoothed[p] = s;
      const was = known ? (state[p] ?? BUSY) : BUSY;
      if ((cfg.reclaimOn === "raw" ? raw : s) > cfg.busyThreshold) {
        state[p] = BUSY;
      } else if (was === HARVESTABLE) {
        state[p] = HARVESTABLE;
      } else if (s < cfg.idleThreshold) {
        const since = was === HOLDING ? (holdSince[p] ?? sample.time) : sample.time;
        holdSince[p] = since;
        state[p] = sample.time - since >= cfg.holdMs ? HARVESTABLE : HOLDING;
      } else {
        state[p] = BUSY;
      }
    }

    const record: SampleRecord = {
      time: sample.time,
      intervalMs: sample.intervalMs,
      memory: { ...sample.memory },
      main: { ...sample.main },
      ids: this.#ids,
      shares,
    };
    this.#ring[this.#next] = record;
    this.#next = (this.#next + 1) % cfg.ringSize;
    this.#count = Math.min(this.#count + 1, cfg.ringSize);
    this.#latest = record;
    this.#cached = undefined;
    return true;
  }

  /**
   * The node as the scheduler sees it at `now`. Stale (no sample within staleAfterMs
   * of `now`, or none at all) shows no harvestable core: nothing new goes there, and
   * what runs there is left to its backend. The view is shared until the next add or
   * setLabels: callers must not change it.
   */
  view(now: number): NodeView {
    const latest = this.#latest;
    const stale = latest === undefined || now - latest.time > this.config.staleAfterMs;
    if (this.#cached !== undefined && this.#cachedStale === stale) return this.#cached;
    const cores: CoreView[] = [];
    for (let p = 0; p < this.#ids.length; p++) {
      cores.push({
        id: this.#ids[p] ?? 0,
        mainUsage: this.#smoothed[p] ?? 0,
        harvestable: !stale && this.#state[p] === HARVESTABLE,
      });
    }
    const memoryAvailableBytes = latest === undefined ? 0 : Math.max(0, latest.memory.availableBytes - this.config.memoryMarginBytes);
    this.#cached = { name: this.name, cores, memoryAvailableBytes, labels: this.#labels, stale };
    this.#cachedStale = stale;
    return this.#cached;
  }

  /**
   * The kept samples, oldest first, at most ringSize. As stored: cores in ascending id
   * order without duplicates, shares rounded to float32 (7 significant digits).
   */
  samples(): NodeSample[] {
    const out: NodeSample[] = [];
    const size = this.config.ringSize;
    for (let i = 0; i < this.#count; i++) {
      const r = this.#ring[(this.#next - this.#count + i + size) % size];
      if (r === undefined) continue;
      const cores = Array.from(r.ids, (id, p) => ({
        id,
        total: r.shares[p * 3] ?? 0,
        main: r.shares[p * 3 + 1] ?? 0,
        odop: r.shares[p * 3 + 2] ?? 0,
      }));
      out.push({ version: "v1", node: this.name, time: r.time, intervalMs: r.intervalMs, cores, memory: { ...r.memory }, main: { ...r.main } });
    }
    return out;
  }

  /**
   * The sample brings a different set (or order) of cores: CPUs were taken offline or
   * brought online, or the agent changed. Rebuilds the per-core arrays in ascending id
   * order, carrying over the state of cores we already knew.
   */
  #realign(cores: NodeSample["cores"]): { source: Int32Array; old: Int32Array } {
    const oldPos = new Map<number, number>();
    this.#ids.forEach((id, p) => oldPos.set(id, p));
    const order = cores.map((c, i) => i).sort((a, b) => (cores[a]?.id ?? 0) - (cores[b]?.id ?? 0) || a - b);
    const kept: number[] = [];
    let lastId = -1;
    for (const i of order) {
      const id = cores[i]?.id ?? -1;
      if (id !== lastId) kept.push(i); // a duplicate id keeps its first entry only
      lastId = id;
    }
    const n = kept.length;
    const ids = new Uint16Array(n);
    const smoothed = new Float64Array(n);
    const state = new Uint8Array(n);
    const holdSince = new Float64Array(n);
    const source = Int32Array.from(kept);
    const old = new Int32Array(n);
    for (let p = 0; p < n; p++) {
      const id = cores[source[p] ?? 0]?.id ?? 0;
      ids[p] = id;
      const q = oldPos.get(id) ?? -1;
      old[p] = q;
      if (q >= 0) {
        smoothed[p] = this.#smoothed[q] ?? 0;
        state[p] = this.#state[q] ?? BUSY;
        holdSince[p] = this.#holdSince[q] ?? 0;
      }
    }
    this.#ids = ids;
    this.#smoothed = smoothed;
    this.#state = state;
    this.#holdSince = holdSince;
    return { source, old };
  }
}

function sameIds(ids: Uint16Array, cores: NodeSample["cores"]): boolean {
  if (ids.length !== cores.length) return false;
  for (let p = 0; p < ids.length; p++) if (ids[p] !== cores[p]?.id) return false;
  return true;
}

function checkConfig(c: Readonly<WindowConfig>): void {
  const bad = (what: string): never => {
    throw new RangeError(`window config: ${what}`);
  };
  if (!(c.idleThreshold >= 0 && c.idleThreshold <= c.busyThreshold && c.busyThreshold <= 1)) {
    bad("need 0 ≤ idleThreshold ≤ busyThreshold ≤ 1");
  }
  if (!(c.holdMs >= 0) || !(c.halfLifeMs >= 0) || !(c.staleAfterMs >= 0) || !(c.memoryMarginBytes >= 0)) {
    bad("holdMs, halfLifeMs, staleAfterMs and memoryMarginBytes must be ≥ 0");
  }
  if (!Number.isInteger(c.ringSize) || c.ringSize < 1) bad("ringSize must be an integer ≥ 1");
  if (c.reclaimOn !== "raw" && c.reclaimOn !== "smoothed") bad('reclaimOn must be "raw" or "smoothed"');
}
