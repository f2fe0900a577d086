/**
 * The pusher's bounded buffer of samples not yet taken by the controller, numbered by seq.
 *
 * Contracts: every sample added gets the next seq (from 0, per buffer, so per agent
 * instance); the samples held always have consecutive seqs (only the oldest are ever
 * removed); when full, adding drops the oldest. A ring: adding and removing are O(1)
 * whatever the capacity.
 */
import type { NodeSample } from "../api/sample.ts";

export interface Entry {
  seq: number;
  sample: NodeSample;
}

export class SampleBuffer {
  readonly capacity: number;
  readonly #ring: (NodeSample | undefined)[];
  #head = 0;
  #length = 0;
  #nextSeq = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(1, Math.floor(capacity));
    this.#ring = new Array<NodeSample | undefined>(this.capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** The seq the next sample added gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Seq of the oldest sample held; undefined when empty. */
  get firstSeq(): number | undefined {
    return this.#length === 0 ? undefined : this.#nextSeq - this.#length;
  }

  /** Adds `sample` with the next seq; true when the oldest was dropped to make room. */
  add(sample: NodeSample): boolean {
    const dropped = this.#length === this.capacity;
    if (dropped) this.#removeOldest();
    this.#ring[(this.#head + this.#length) % this.capacity] = sample;
    this.#length++;
    this.#nextSeq++;
    return dropped;
  }

  /** The oldest `count` samples (fewer when fewer are held), oldest first. */
  oldest(count: number): Entry[] {
    const first = this.firstSeq ?? this.#nextSeq;
    const out: Entry[] = [];
    for (let i = 0; i < Math.min(count, this.#length); i++) {
      const sample = this.#ring[(this.#head + i) % this.capacity];
      if (sample !== undefined) out.push({ seq: first + i, sample });
    }
    return out;
  }

  /** Removes every sample with a seq below `seq`; how many were removed. */
  removeBelow(seq: number): number {
    let removed = 0;
    while (this.#length > 0 && (this.firstSeq ?? seq) < seq) {
      this.#removeOldest();
      removed++;
    }
    return removed;
  }

  #removeOldest(): void {
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#length--;
  }
}
