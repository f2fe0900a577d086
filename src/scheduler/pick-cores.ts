/**
 * Core-id lists for one round: which of a node's free cores to pin an execution to,
 * and taking them out of the node's free list. A node's free list is a segment
 * [from, to) of an array shared by all nodes (one allocation per round, not one per
 * node), ascending and without duplicates.
 */

/** A writable array of core ids: a plain array (tests) or the round's Int32Array. */
export type CoreIds = { readonly length: number; [index: number]: number };

/**
 * Which `n` cores of free[from, to) to take. Contiguous ids share caches (and, on most
 * machines, a socket), and taking them from the smallest run that holds `n` keeps the
 * long runs whole for executions that need many cores. When no run is long enough,
 * contiguity is not worth a search: the lowest ids.
 *
 * @returns the chosen ids, ascending (n ≤ to − from)
 */
export function pickCores(free: CoreIds, n: number, from = 0, to = free.length): number[] {
  const at = pickStart(free, n, from, to);
  const out = new Array<number>(Math.max(0, n));
  for (let i = 0; i < n; i++) out[i] = free[at + i] ?? 0;
  return out;
}

/** pickCores' choice as a position: the cores are free[at, at + n). */
export function pickStart(free: CoreIds, n: number, from: number, to: number): number {
  // All free cores taken, or all in one run (an idle node, often): nothing to choose.
  if (n <= 0 || n >= to - from || (free[to - 1] ?? 0) - (free[from] ?? 0) === to - from - 1) return from;
  let at = from;
  let bestLength = Infinity;
  let runStart = from;
  for (let i = from + 1; i <= to; i++) {
    if (i < to && free[i] === (free[i - 1] ?? 0) + 1) continue;
    const length = i - runStart; // the run free[runStart, i) ends here
    if (length >= n && length < bestLength) {
      at = runStart;
      bestLength = length;
      if (length === n) break;
    }
    runStart = i;
  }
  return at;
}

/**
 * Takes the ids of `taken` (ascending) out of free[from, to) in place, keeping the rest
 * in order at the front of the segment.
 *
 * @returns the segment's new end
 */
export function removeCores(free: CoreIds, from: number, to: number, taken: readonly number[]): number {
  let w = from;
  let j = 0;
  for (let i = from; i < to; i++) {
    const id = free[i] ?? 0;
    while (j < taken.length && (taken[j] ?? 0) < id) j++;
    if (taken[j] !== id) free[w++] = id;
  }
  return w;
}
