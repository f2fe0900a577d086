/**
 * One decision round: given the nodes as their windows see them, the executions that
 * hold cores and those waiting, decide what to take back, what to resume and what to
 * start. Pure and deterministic: the same input gives the same decisions, in the same
 * order (contention by key, then resumes, then starts in queue order).
 *
 * The rules, in the order they apply:
 *
 * 1. Contention. A running execution with a core that is no longer harvestable is
 *    paused, requeued or cancelled as its `onContention` says: the main application
 *    comes first. On a stale node (or one missing from the input) nothing is known,
 *    and its running executions are left to their backend. Executions paused by a
 *    person are never touched. Cores of executions taken back this round stay held
 *    until the next round: their processes are still there until the backend acts.
 * 2. Resume. A scheduler-paused execution holds no cores (it uses none, and holding
 *    them would idle cores the main application left). It resumes, before anything new
 *    starts, when its node has as many free harvestable cores as it had: its own ones
 *    first, others of the same node for the rest. Its memory is still resident, so no
 *    memory check. Highest priority first, then by key.
 * 3. Start. The queue in order (priority desc, createdAt asc, key asc), each task at
 *    most `concurrency` active executions (paused or not, counted at round start, plus
 *    those started now). A node qualifies when it is fresh, matches `node` and
 *    `nodeSelector`, has ≥ cores.min free harvestable cores and memoryBytes left after
 *    this round's earlier starts. Among those, best fit: the fewest free cores, ties to
 *    the node listed first, so that big holes stay for big executions. The execution
 *    gets up to cores.max of them, contiguous ids when a run is long enough.
 *
 * Memory: `memoryAvailableBytes` comes from the node's latest sample, which already
 * counts what running executions use; only this round's starts are subtracted here.
 *
 * Cost: O(cores of all nodes + active + pending) (the queue is radix-sorted, see
 * queue.ts) plus, per start, a search of the best-fit index (see fit-index.ts); memory
 * the same, plus the index's buckets (largest free count × nodes / 32 words). Core ids
 * within a node are assumed unique (NodeWindow makes them so), and an execution is
 * either pending or active, never both (the controller derives both lists from the
 * executions' phases; the scheduler does not check it).
 */
import { EVERY_NODE, NodeGroups, matches } from "./node-groups.ts";
import { pickCores, pickStart, removeCores } from "./pick-cores.ts";
import { queuePositions } from "./queue.ts";
import type { ActiveExecution, Decision, NodeView, PendingExecution, SchedulerInput } from "./types.ts";

export function schedule(input: SchedulerInput): Decision[] {
  return new Round(input).run();
}

/** #start's `where` of an execution: ≥ 0, only that node; WHERE_NONE; below, group −2 − where. */
const WHERE_NONE = -1;
/** Numbers per execution in #start's records. */
const RECORD = 5;

/** A held core, as #markHeld leaves it; #collectFree then says whether the node still offers it. */
const HELD = 1;
const HELD_RECLAIMED = 2;
const HELD_HARVESTABLE = 3;

const byKey = (x: { key: string }, y: { key: string }): number => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);

/**
 * The state of one round. Nodes are known by their number (position in input.nodes);
 * per-node state lives in typed arrays indexed by it, and the free core ids of all
 * nodes share one array (node g's are pool[poolStart[g], poolStart[g] + free[g]),
 * ascending): a round over 5,000 nodes allocates a handful of arrays, not thousands.
 */
class Round {
  readonly #input: SchedulerInput;
  readonly #nodes: readonly NodeView[];
  readonly #byName = new Map<string, number>();
  /** Fresh and the first node of its name: may receive work this round. */
  readonly #usable: Uint8Array;
  readonly #memoryLeft: Float64Array;
  readonly #free: Int32Array;
  readonly #poolStart: Int32Array;
  #pool = new Int32Array(0);
  /**
   * Cores held by active executions: node g's core c at held[heldBase[g] + c] for
   * c < heldSpan[g] (heldBase −1: none), 0 or one of HELD*.
   */
  readonly #heldBase: Int32Array;
  readonly #heldSpan: Int32Array;
  #held = new Uint8Array(0);
  /** Node number of each active execution that holds cores, −1 for the others. */
  readonly #activeNode: Int32Array;
  readonly #paused: ActiveExecution[] = [];
  readonly #names: string[];

  /** The best-fit indexes, built when the start phase begins (resumes come before). */
  #groups: NodeGroups | undefined;

  constructor(input: SchedulerInput) {
    this.#input = input;
    this.#nodes = input.nodes;
    const n = this.#nodes.length;
    this.#usable = new Uint8Array(n);
    this.#memoryLeft = new Float64Array(n);
    this.#free = new Int32Array(n);
    this.#poolStart = new Int32Array(n);
    this.#heldBase = new Int32Array(n).fill(-1);
    this.#heldSpan = new Int32Array(n);
    this.#activeNode = new Int32Array(input.active.length).fill(-1);
    this.#names = this.#nodes.map((node) => node.name);
    for (let g = 0; g < n; g++) {
      const node = this.#nodes[g];
      if (node === undefined || this.#byName.has(node.name)) continue; // a duplicate name gets nothing
      this.#byName.set(node.name, g);
      this.#usable[g] = node.stale ? 0 : 1;
      this.#memoryLeft[g] = node.memoryAvailableBytes;
    }
  }

  run(): Decision[] {
    this.#markHeld();
    this.#collectFree();
    const out = this.#contention();
    this.#resume(out);
    this.#start(out);
    return out;
  }

  /**
   * Running and person-paused executions hold their cores; scheduler-paused ones hold
   * none (they are listed in #paused for #resume).
   */
  #markHeld(): void {
    const active = this.#input.active;
    const holder = this.#activeNode;
    active.forEach((a, i) => {
      if (a.pausedByScheduler && !a.pausedByUser) {
        this.#paused.push(a);
        return;
      }
      const g = this.#byName.get(a.node);
      if (g === undefined) return;
      holder[i] = g;
      for (const c of a.cores) if (isCoreId(c) && c >= (this.#heldSpan[g] ?? 0)) this.#heldSpan[g] = c + 1;
    });
    let total = 0;
    for (let g = 0; g < this.#nodes.length; g++) {
      const span = this.#heldSpan[g] ?? 0;
      if (span === 0) continue;
      this.#heldBase[g] = total;
      total += span;
    }
    this.#held = new Uint8Array(total);
    active.forEach((a, i) => {
      const g = holder[i] ?? -1;
      if (g < 0) return;
      const base = this.#heldBase[g] ?? 0;
      for (const c of a.cores) if (isCoreId(c)) this.#held[base + c] = HELD;
    });
  }

  /**
   * Fills the pool with each usable node's harvestable cores that no one holds, and
   * notes for each held core whether the node still lists it as harvestable (for
   * #contention). One pass over every core of every usable node: the only O(cores) step.
   */
  #collectFree(): void {
    let size = 0;
    for (let g = 0; g < this.#nodes.length; g++) if (this.#usable[g] === 1) size += this.#nodes[g]?.cores.length ?? 0;
    const pool = new Int32Array(size);
    const held = this.#held;
    let at = 0;
    for (let g = 0; g < this.#nodes.length; g++) {
      if (this.#usable[g] === 0) continue;
      const cores = this.#nodes[g]?.cores ?? [];
      const start = at;
      const base = this.#heldBase[g] ?? -1;
      if (base < 0) {
        // No active execution here (most nodes): only harvestable ones.
        for (let j = 0; j < cores.length; j++) {
          const c = cores[j];
          if (c !== undefined && c.harvestable) pool[at++] = c.id;
        }
      } else {
        const span = this.#heldSpan[g] ?? 0;
        for (let j = 0; j < cores.length; j++) {
          const c = cores[j];
          if (c === undefined) continue;
          const id = c.id;
          if (id < span && held[base + id] !== 0) held[base + id] = c.harvestable ? HELD_HARVESTABLE : HELD_RECLAIMED;
          else if (c.harvestable) pool[at++] = id;
        }
      }
      for (let j = start + 1; j < at; j++) {
        if ((pool[j] ?? 0) < (pool[j - 1] ?? 0)) {
          pool.subarray(start, at).sort(); // cores not listed by id: rare
          break;
        }
      }
      this.#poolStart[g] = start;
      this.#free[g] = at - start;
    }
    this.#pool = pool;
  }

  /** Running executions on a fresh node with a core that is not (or no longer listed as) harvestable. */
  #contention(): Decision[] {
    const out: Decision[] = [];
    this.#input.active.forEach((a, i) => {
      const g = this.#activeNode[i] ?? -1;
      if (g < 0 || this.#usable[g] === 0 || a.pausedByUser || a.pausedByScheduler) return;
      const base = this.#heldBase[g] ?? 0;
      for (const c of a.cores) {
        if (!isCoreId(c) || this.#held[base + c] !== HELD_HARVESTABLE) {
          out.push({ type: a.onContention, key: a.key, reason: "CoresReclaimed" });
          return;
        }
      }
    });
    return out.sort(byKey);
  }

  #resume(out: Decision[]): void {
    const paused = this.#paused.sort((x, y) => y.priority - x.priority || byKey(x, y));
    for (const a of paused) {
      const g = this.#byName.get(a.node);
      if (g === undefined || this.#usable[g] === 0) continue;
      const n = a.cores.length;
      if ((this.#free[g] ?? 0) < n) continue;
      const start = this.#poolStart[g] ?? 0;
      const own: number[] = [];
      const others: number[] = [];
      for (let j = start; j < start + (this.#free[g] ?? 0); j++) {
        const id = this.#pool[j] ?? 0;
        (a.cores.includes(id) ? own : others).push(id);
      }
      const rest = pickCores(others, n - own.length);
      const cores = [...own, ...rest].sort((x, y) => x - y);
      this.#take(g, cores, 0);
      out.push({ type: "resume", key: a.key, cores });
    }
  }

  /**
   * One pass over the queue in its input order gathers all the placement loop needs
   * into one flat record per execution, laid out in queue order; the loop then reads
   * them front to back and never touches the executions' objects. At 50,000
   * executions, any read in queue order of something laid out in input order (an
   * object, its key's hash, a typed array indexed by input position) is a cache miss;
   * before this layout, those misses cost more than the placing.
   */
  #start(out: Decision[]): void {
    const pending = this.#input.pending;
    const n = pending.length;
    const order = queuePositions(pending);
    const rank = new Int32Array(n);
    for (let j = 0; j < n; j++) rank[order[j] ?? 0] = j;
    const groups = new NodeGroups(this.#nodes, this.#usable, this.#free);
    this.#groups = groups;

    // Concurrency, by number, for the tasks that have a limit only.
    const limited = new Map<string, number>();
    const limits: number[] = [];
    const running: number[] = [];
    for (const a of this.#input.active) {
      const t = this.#limitedTask(a.task, limited, limits, running);
      if (t >= 0) running[t] = (running[t] ?? 0) + 1;
    }

    // Record j (the j-th in queue order): where, limited task or −1, cores.min, cores.max, memory.
    const records = new Float64Array(n * RECORD);
    const keys = new Array<string>(n);
    const anyLimit = this.#input.concurrency.size > 0;
    for (let i = 0; i < n; i++) {
      const p = pending[i];
      if (p === undefined) continue;
      const j = rank[i] ?? 0;
      const r = j * RECORD;
      const need = Math.max(1, Math.ceil(p.cores.min));
      records[r] = this.#where(p, groups);
      records[r + 1] = anyLimit ? this.#limitedTask(p.task, limited, limits, running) : -1;
      records[r + 2] = need;
      records[r + 3] = Math.max(need, Math.floor(p.cores.max));
      records[r + 4] = p.memoryBytes;
      keys[j] = p.key;
    }

    const pool = this.#pool;
    for (let j = 0, r = 0; j < n; j++, r += RECORD) {
      const w = records[r] ?? WHERE_NONE;
      if (w === WHERE_NONE) continue;
      const t = records[r + 1] ?? -1;
      if (t >= 0 && (running[t] ?? 0) >= (limits[t] ?? 0)) continue;
      const need = records[r + 2] ?? 1;
      const bytes = records[r + 4] ?? 0;
      let g: number;
      if (w >= 0) g = (this.#free[w] ?? 0) >= need && (this.#memoryLeft[w] ?? 0) >= bytes ? w : -1;
      else g = groups.find(-2 - w, need, bytes, this.#memoryLeft);
      if (g < 0) continue;
      const start = this.#poolStart[g] ?? 0;
      const free = this.#free[g] ?? 0;
      const take = Math.min(free, records[r + 3] ?? need);
      const at = pickStart(pool, take, start, start + free);
      const cores: number[] = []; // a literal and push: allocated inline, unlike new Array(n)
      for (let c = 0; c < take; c++) cores.push(pool[at + c] ?? 0);
      pool.copyWithin(at, at + take, start + free); // the node's free list stays ascending
      this.#placed(g, free, free - take, bytes);
      if (t >= 0) running[t] = (running[t] ?? 0) + 1;
      out.push({ type: "start", key: keys[j] ?? "", node: this.#names[g] ?? "", cores });
    }
  }

  /** The number of `task` among the tasks with a concurrency limit (numbering it on first sight), or −1 (noted too). */
  #limitedTask(task: string, limited: Map<string, number>, limits: number[], running: number[]): number {
    const known = limited.get(task);
    if (known !== undefined) return known;
    const limit = this.#input.concurrency.get(task);
    let t = -1;
    if (limit !== undefined) {
      t = limits.push(limit) - 1;
      running.push(0);
    }
    limited.set(task, t);
    return t;
  }

  /** Where `p` may go, as #start's `where` encodes it. */
  #where(p: PendingExecution, groups: NodeGroups): number {
    const selector = p.nodeSelector;
    if (p.node !== undefined) {
      const g = this.#byName.get(p.node);
      if (g === undefined || this.#usable[g] === 0) return WHERE_NONE;
      if (selector !== undefined && !matches(this.#nodes[g]?.labels ?? {}, selector)) return WHERE_NONE;
      return g;
    }
    return -2 - (selector === undefined ? EVERY_NODE : groups.of(selector));
  }

  /** Pins `cores` of node g (ascending, all free) and reserves `memory` bytes there. */
  #take(g: number, cores: readonly number[], memory: number): void {
    const start = this.#poolStart[g] ?? 0;
    const from = this.#free[g] ?? 0;
    this.#placed(g, from, removeCores(this.#pool, start, start + from, cores) - start, memory);
  }

  /** Node g went from `from` free cores to `to`, and `memory` bytes were reserved there. */
  #placed(g: number, from: number, to: number, memory: number): void {
    this.#free[g] = to;
    this.#memoryLeft[g] = (this.#memoryLeft[g] ?? 0) - memory;
    this.#groups?.moved(g, from, to); // resumes come before the indexes exist
  }
}

/**
 * A core id as samples carry them (an integer 0..65535). Anything else in an
 * execution's cores is no core of its node: not held, and reclaimed (and it cannot
 * make the held-core array huge or misaligned).
 */
function isCoreId(c: number): boolean {
  return Number.isInteger(c) && c >= 0 && c <= 65_535;
}
