/**
 * Best-fit index over a set of nodes, for one decision round: which node with the
 * fewest free cores still has at least `need` free and `memory` bytes left?
 *
 * Nodes sit in buckets by free-core count. Each bucket is a bitset over the members'
 * positions, so a search walks buckets upward from `need` and, inside a bucket, nodes in
 * the order the caller listed them: ties go to the node listed first, whatever order
 * the placements happened in. Two summary bitsets (which buckets are non-empty; which
 * 32-node words of a bucket are non-zero) let a search jump over empty space with a
 * count-trailing-zeros instead of walking it: a search costs a few word operations plus
 * the nodes it skips for lack of memory, whatever the number of nodes; moving a node
 * between buckets is O(1).
 *
 * Within a round the nodes only lose cores and memory (placements), never gain them.
 * That makes failures monotone, and the index remembers them: once a search for
 * (need, memory) found nothing, any search for at least as many cores and at least as
 * much memory fails at once. A queue of 50,000 executions that mostly cannot fit costs
 * one walk per distinct shape, not one per execution.
 */
export class FitIndex {
  /** Position in this index → the caller's node number, ascending. */
  readonly members: Int32Array;
  /** 32-bit words per bucket bitset, and per bucket summary. */
  readonly #words: number;
  readonly #summaryWords: number;
  /** Bucket k's bitset at [k·words, (k+1)·words): bit `local` set when that member has k free cores. */
  readonly #bits: Uint32Array;
  /** Bucket k's summary at [k·summaryWords, …): bit w set when word w of its bitset is not 0. */
  readonly #summary: Uint32Array;
  /** Bit k set when bucket k is not empty. */
  readonly #nonEmpty: Uint32Array;
  readonly #count: Int32Array;
  /** failed[k]: the least memory a failed search needing ≤ k cores asked for. */
  readonly #failed: Float64Array;

  /**
   * @param members the caller's node numbers, ascending
   * @param free free-core count of each node, by the caller's node number
   * @param maxFree at least the largest free count of a member (nodes only lose cores afterwards)
   */
  constructor(members: Int32Array, free: Int32Array, maxFree: number) {
    this.members = members;
    const buckets = maxFree + 1;
    this.#words = Math.max(1, Math.ceil(members.length / 32));
    this.#summaryWords = Math.ceil(this.#words / 32);
    this.#bits = new Uint32Array(buckets * this.#words);
    this.#summary = new Uint32Array(buckets * this.#summaryWords);
    this.#nonEmpty = new Uint32Array(Math.ceil(buckets / 32));
    this.#count = new Int32Array(buckets);
    this.#failed = new Float64Array(buckets + 1).fill(Infinity);
    for (let local = 0; local < members.length; local++) this.#set(local, free[members[local] ?? 0] ?? 0);
  }

  /** The member at `local` went from `from` free cores to `to` (fewer). */
  move(local: number, from: number, to: number): void {
    if (from > 0) {
      const w = local >>> 5;
      const i = from * this.#words + w;
      const word = (this.#bits[i] ?? 0) & ~(1 << (local & 31));
      this.#bits[i] = word;
      if (word === 0) clearBit(this.#summary, from * this.#summaryWords * 32 + w);
      const count = (this.#count[from] ?? 0) - 1;
      this.#count[from] = count;
      if (count === 0) clearBit(this.#nonEmpty, from);
    }
    this.#set(local, to);
  }

  /**
   * The caller's number of the first node, among those with the fewest free cores ≥
   * need, whose memoryLeft (by the caller's node number) is ≥ memory; -1 if none.
   */
  find(need: number, memory: number, memoryLeft: Float64Array): number {
    const buckets = this.#count.length;
    if (need >= buckets || memory >= (this.#failed[need] ?? Infinity)) return -1;
    const words = this.#words;
    const summaryWords = this.#summaryWords;
    for (let k = nextBit(this.#nonEmpty, need); k >= 0; k = nextBit(this.#nonEmpty, k + 1)) {
      const base = k * words;
      const summaryBase = k * summaryWords;
      for (let s = 0; s < summaryWords; s++) {
        let nonZero = this.#summary[summaryBase + s] ?? 0;
        while (nonZero !== 0) {
          const lowWord = nonZero & -nonZero;
          const w = (s << 5) + (31 - Math.clz32(lowWord));
          nonZero ^= lowWord;
          let word = this.#bits[base + w] ?? 0;
          while (word !== 0) {
            const low = word & -word;
            const node = this.members[(w << 5) + (31 - Math.clz32(low))] ?? -1;
            if ((memoryLeft[node] ?? 0) >= memory) return node;
            word ^= low;
          }
        }
      }
    }
    for (let k = need; k < this.#failed.length; k++) {
      if ((this.#failed[k] ?? Infinity) > memory) this.#failed[k] = memory;
    }
    return -1;
  }

  #set(local: number, free: number): void {
    if (free <= 0) return; // a node without a free core fits nothing (every need is ≥ 1)
    const w = local >>> 5;
    const i = free * this.#words + w;
    const word = this.#bits[i] ?? 0;
    if (word === 0) setBit(this.#summary, free * this.#summaryWords * 32 + w);
    this.#bits[i] = word | (1 << (local & 31));
    const count = (this.#count[free] ?? 0) + 1;
    this.#count[free] = count;
    if (count === 1) setBit(this.#nonEmpty, free);
  }
}

function setBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] = (bits[i >>> 5] ?? 0) | (1 << (i & 31));
}

function clearBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] = (bits[i >>> 5] ?? 0) & ~(1 << (i & 31));
}

/** The lowest set bit ≥ from, or -1. */
function nextBit(bits: Uint32Array, from: number): number {
  let i = from >>> 5;
  if (i >= bits.length) return -1;
  let word = (bits[i] ?? 0) & (-1 << (from & 31));
  for (;;) {
    if (word !== 0) return (i << 5) + (31 - Math.clz32(word & -word));
    if (++i >= bits.length) return -1;
    word = bits[i] ?? 0;
  }
}
