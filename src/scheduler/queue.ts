/**
 * The order of the queue: priority descending, then createdAt ascending, then key (in
 * code-unit order, not the locale's: the same on every machine).
 *
 * Sorting 50,000 executions with a comparator costs ~17 ms, a third of a round's
 * budget. queuePositions turns (priority, createdAt) into one integer per execution (the
 * priority's rank among the distinct priorities, times the createdAt span, plus
 * createdAt), radix-sorts the positions by it, and compares keys only within runs of
 * equal (priority, createdAt). It falls back to the comparator when that integer would
 * not be exact in a double (createdAt not whole milliseconds, or spans too wide), and
 * costs one pass when the queue is already in order.
 */
import type { PendingExecution } from "./types.ts";

export function queueOrder(a: PendingExecution, b: PendingExecution): number {
  return b.priority - a.priority || a.createdAt - b.createdAt || compareKeys(a.key, b.key);
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The positions of `pending` in queue order. */
export function queuePositions(pending: readonly PendingExecution[]): Int32Array {
  const n = pending.length;
  // One read of each execution; the rest works on these.
  const priority = new Float64Array(n);
  const created = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = pending[i];
    priority[i] = p?.priority ?? 0;
    created[i] = p?.createdAt ?? 0;
  }
  let sorted = true;
  let minCreated = Infinity;
  let maxCreated = -Infinity;
  let minPriority = Infinity;
  let maxPriority = -Infinity;
  let wholeCreated = true;
  let wholePriority = true;
  for (let i = 0; i < n; i++) {
    const pr = priority[i] ?? 0;
    const c = created[i] ?? 0;
    if (sorted && i > 0) {
      const before = (priority[i - 1] ?? 0) - pr || c - (created[i - 1] ?? 0);
      if (before < 0 || (before === 0 && compareKeys(pending[i - 1]?.key ?? "", pending[i]?.key ?? "") > 0)) sorted = false;
    }
    if (pr < minPriority) minPriority = pr;
    if (pr > maxPriority) maxPriority = pr;
    if (c < minCreated) minCreated = c;
    if (c > maxCreated) maxCreated = c;
    if (!Number.isSafeInteger(c)) wholeCreated = false;
    if (!Number.isSafeInteger(pr)) wholePriority = false;
  }
  if (sorted) return Int32Array.from(pending.keys());
  // rank: 0 for the highest priority. Integer priorities use their distance from the
  // highest (no lookup); others, or a range far wider than the queue, their rank among
  // the distinct values.
  let rank: (p: number) => number = (p) => maxPriority - p;
  let levels = maxPriority - minPriority + 1;
  let finite = true;
  if (!wholePriority || levels > n) {
    const distinct = [...new Set(priority)].sort((x, y) => y - x);
    const rankOf = new Map(distinct.map((x, r) => [x, r]));
    rank = (p) => rankOf.get(p) ?? 0;
    levels = distinct.length;
    finite = distinct.every(Number.isFinite);
  }
  const span = maxCreated - minCreated + 1;
  if (!wholeCreated || !finite || levels * span > Number.MAX_SAFE_INTEGER) {
    return Int32Array.from([...pending.keys()].sort((a, b) => queueOrder(pending[a] as PendingExecution, pending[b] as PendingExecution)));
  }
  const lo = new Uint32Array(n);
  const hi = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rank(priority[i] ?? 0) * span + ((created[i] ?? 0) - minCreated);
    lo[i] = c % 0x1_0000_0000;
    hi[i] = Math.floor(c / 0x1_0000_0000);
  }
  const { order, sortedLo, sortedHi } = radixSort(lo, hi, levels * span - 1);
  // Equal (priority, createdAt): by key. Runs are short (usually of one).
  let runStart = 0;
  for (let i = 1; i <= n; i++) {
    if (i < n && sortedLo[i] === sortedLo[runStart] && sortedHi[i] === sortedHi[runStart]) continue;
    if (i - runStart > 1) {
      order.subarray(runStart, i).sort((x, y) => compareKeys(pending[x]?.key ?? "", pending[y]?.key ?? "") || x - y);
    }
    runStart = i;
  }
  return order;
}

/**
 * Positions 0..n−1 ordered by the 53-bit integers hi·2³² + lo, stably (LSD radix sort,
 * 16 bits a pass, only as many passes as `max` needs), with the keys in that order.
 */
function radixSort(lo: Uint32Array, hi: Uint32Array, max: number): { order: Int32Array; sortedLo: Uint32Array; sortedHi: Uint32Array } {
  const n = lo.length;
  let order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let spare = new Int32Array(n);
  let keyLo: Uint32Array = lo;
  let keyHi: Uint32Array = hi;
  let spareLo: Uint32Array = new Uint32Array(n);
  let spareHi: Uint32Array = new Uint32Array(n);
  const counts = new Int32Array(0x1_0000 + 1);
  // The keys travel with the positions, so that every pass reads its input front to back.
  for (let pass = 0; pass < 4 && max >= 2 ** (16 * pass); pass++) {
    const words = pass < 2 ? keyLo : keyHi;
    const shift = (pass % 2) * 16;
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const d = ((words[i] ?? 0) >>> shift) & 0xffff;
      counts[d + 1] = (counts[d + 1] ?? 0) + 1;
    }
    for (let d = 1; d <= 0x1_0000; d++) counts[d] = (counts[d] ?? 0) + (counts[d - 1] ?? 0);
    for (let i = 0; i < n; i++) {
      const d = ((words[i] ?? 0) >>> shift) & 0xffff;
      const to = counts[d] ?? 0;
      counts[d] = to + 1;
      spare[to] = order[i] ?? 0;
      spareLo[to] = keyLo[i] ?? 0;
      spareHi[to] = keyHi[i] ?? 0;
    }
    [order, spare] = [spare, order];
    [keyLo, spareLo] = [spareLo, keyLo];
    [keyHi, spareHi] = [spareHi, keyHi];
  }
  return { order, sortedLo: keyLo, sortedHi: keyHi };
}
