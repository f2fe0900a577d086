/**
 * Writes OpNode status at a low, bounded rate (DESIGN §3): a node's status is written
 * when it changed in a way a person would notice (capacity, state, harvestable cores or
 * memory by more than `memoryStepBytes`) and otherwise only as a heartbeat every
 * `heartbeatMs`; no node is written more often than every `minIntervalMs`. The fast
 * data stays in the controller's memory; a 5,000-node cluster stays far from thousands
 * of writes per second.
 */
import type { Logger } from "pino";
import type { OpNode, OpNodeStatus } from "../api/opnode.ts";
import { parseQuantity, toUnits } from "../api/quantity.ts";
import { ConflictError } from "../store/errors.ts";
import type { Store } from "../store/types.ts";
import type { Clock } from "./clock.ts";
import { rfc3339 } from "./conditions.ts";

export type OpNodeWriterOptions = {
  store: Store;
  clock: Clock;
  log: Logger;
  /** Least time between two writes of one node. Default 10 s. */
  minIntervalMs?: number;
  /** A node whose status did not change is written again after this (its heartbeat). Default 60 s. */
  heartbeatMs?: number;
  /**
   * Writes per second for all nodes together (a token bucket holding at most two
   * seconds' worth). Default 20: a 5,000-node cluster costs the API server 20 writes a
   * second at most, whatever its nodes do; what is due and not written waits for the
   * next call, changed nodes and the longest-unwritten first.
   */
  maxWritesPerSecond?: number;
};

type Written = { at: number; signature: string };

export class OpNodeWriter {
  readonly #o: OpNodeWriterOptions;
  readonly #written = new Map<string, Written>();
  #busy = false;
  #tokens: number;
  #refilledAt: number;

  constructor(options: OpNodeWriterOptions) {
    this.#o = options;
    this.#tokens = this.#burst;
    this.#refilledAt = options.clock.now();
  }

  get #rate(): number {
    return this.#o.maxWritesPerSecond ?? 20;
  }

  get #burst(): number {
    return Math.max(1, 2 * this.#rate);
  }

  /** Writes what is due of `nodes`; one call at a time (a call while one runs is dropped: the next one catches up). */
  async write(nodes: readonly { name: string; status: OpNodeStatus }[]): Promise<number> {
    if (this.#busy) return 0;
    this.#busy = true;
    let writes = 0;
    try {
      const now = this.#o.clock.now();
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#rate);
      this.#refilledAt = now;
      const due: { name: string; status: OpNodeStatus; signature: string; changed: boolean; age: number }[] = [];
      for (const { name, status } of nodes) {
        const signature = signatureOf(status);
        const last = this.#written.get(name);
        const changed = last?.signature !== signature;
        const age = last === undefined ? Infinity : now - last.at;
        if (age < (this.#o.minIntervalMs ?? 10_000) || (!changed && age < (this.#o.heartbeatMs ?? 60_000))) continue;
        due.push({ name, status, signature, changed, age });
      }
      due.sort((a, b) => Number(b.changed) - Number(a.changed) || (a.age === b.age ? 0 : b.age > a.age ? 1 : -1));
      for (const { name, status, signature } of due) {
        if (this.#tokens < 1) break;
        this.#tokens -= 1;
        try {
          // An agent's node carries its last push as the heartbeat; others are written as seen now.
          await this.#put(name, { ...status, lastHeartbeatTime: status.lastHeartbeatTime ?? rfc3339(now) });
          this.#written.set(name, { at: now, signature });
          writes++;
        } catch (error) {
          this.#o.log.warn({ err: error, node: name }, "could not write OpNode status");
        }
      }
    } finally {
      this.#busy = false;
    }
    return writes;
  }

  async #put(name: string, status: OpNodeStatus): Promise<void> {
    const { store } = this.#o;
    for (let tries = 0; ; tries++) {
      const existing = await store.get("OpNode", undefined, name);
      const node: OpNode = existing ?? (await store.create<OpNode>({ apiVersion: "odop.io/v1alpha1", kind: "OpNode", metadata: { name }, spec: { unschedulable: false } }));
      try {
        await store.updateStatus<OpNode>({ ...node, status: { ...node.status, ...status } });
        return;
      } catch (error) {
        if (!(error instanceof ConflictError) || tries >= 2) throw error;
      }
    }
  }
}

/** What makes a status worth writing before its heartbeat: everything but the heartbeat, memory rounded to 256 MiB. */
function signatureOf(status: OpNodeStatus): string {
  const { lastHeartbeatTime: _, harvestable, ...rest } = status;
  const quantity = harvestable === undefined ? undefined : parseQuantity(String(harvestable.memory));
  const memory = quantity === undefined ? undefined : Math.round(Number(toUnits(quantity)) / 2 ** 28);
  return JSON.stringify({ ...rest, harvestable: harvestable === undefined ? undefined : { ...harvestable, memory } });
}
