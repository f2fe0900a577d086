/**
 * The best-fit indexes of one round's start phase: one over every node, and one per
 * distinct `nodeSelector` of the queue, each over the nodes its selector matches, all
 * kept in step as placements take cores. Groups are numbered: 0 is every node, a
 * selector gets its number on first sight.
 */
import { FitIndex } from "./fit-index.ts";
import type { NodeView } from "./types.ts";

export type Selector = Readonly<Record<string, string>>;

export const EVERY_NODE = 0;

export class NodeGroups {
  readonly #nodes: readonly NodeView[];
  /** Whether node g may receive work (fresh, first of its name). */
  readonly #usable: Uint8Array;
  /** Free-core count by node number, owned by the caller and read when a group is built. */
  readonly #free: Int32Array;
  readonly #groups: FitIndex[] = [];
  /** Per node, flat (group number, position in that group) pairs, to move it on a placement. */
  readonly #links: (number[] | undefined)[] = [];
  readonly #bySelector = new Map<Selector, number>();
  readonly #byContent = new Map<string, number>();
  /** label name → label value → usable nodes, built on the first selector. */
  #labels: Map<string, Map<string, number[]>> | undefined;

  /** The free counts must be final for the round's earlier phases: groups are built from them. */
  constructor(nodes: readonly NodeView[], usable: Uint8Array, free: Int32Array) {
    this.#nodes = nodes;
    this.#usable = usable;
    this.#free = free;
    // Every node, so that a node's position in group 0 is its number. Nodes that may
    // not receive work have no free core, and the index leaves those out of its buckets.
    this.#groups.push(this.#build(Int32Array.from(nodes.keys())));
  }

  /** See FitIndex.find; -1 if none. */
  find(group: number, need: number, memory: number, memoryLeft: Float64Array): number {
    return this.#groups[group]?.find(need, memory, memoryLeft) ?? -1;
  }

  /** Node g went from `from` free cores to `to`. */
  moved(g: number, from: number, to: number): void {
    this.#groups[EVERY_NODE]?.move(g, from, to);
    const links = this.#links[g];
    if (links === undefined) return;
    for (let i = 0; i < links.length; i += 2) this.#groups[links[i] ?? 0]?.move(links[i + 1] ?? 0, from, to);
  }

  /**
   * The group of the nodes a selector matches, built on first use. Selectors are looked
   * up by object first (the executions of one task usually share theirs), then by content.
   */
  of(selector: Selector): number {
    const known = this.#bySelector.get(selector);
    if (known !== undefined) return known;
    const keys = Object.keys(selector).sort();
    if (keys.length === 0) return EVERY_NODE;
    const content = keys.map((k) => `${k}\u0000${selector[k]}`).join("\u0000");
    let group = this.#byContent.get(content);
    if (group === undefined) {
      const index = this.#build(this.#matching(selector, keys));
      const number = this.#groups.push(index) - 1;
      index.members.forEach((g, local) => (this.#links[g] ??= []).push(number, local));
      this.#byContent.set(content, number);
      group = number;
    }
    this.#bySelector.set(selector, group);
    return group;
  }

  /** An index over `members` (ascending node numbers) with their free counts now. */
  #build(members: Int32Array): FitIndex {
    let maxFree = 0;
    for (const g of members) maxFree = Math.max(maxFree, this.#free[g] ?? 0);
    return new FitIndex(members, this.#free, maxFree);
  }

  /** Usable nodes with a free core whose labels match, ascending. */
  #matching(selector: Selector, keys: readonly string[]): Int32Array {
    // Nested maps rather than "name=value" strings: names and values are the views' own
    // strings, hashed once for all rounds.
    let index = this.#labels;
    if (index === undefined) {
      index = new Map();
      for (let g = 0; g < this.#nodes.length; g++) {
        if (this.#usable[g] === 0) continue;
        const labels = this.#nodes[g]?.labels ?? {};
        for (const k of Object.keys(labels)) {
          const v = labels[k] ?? "";
          let values = index.get(k);
          if (values === undefined) index.set(k, (values = new Map<string, number[]>()));
          let list = values.get(v);
          if (list === undefined) values.set(v, (list = []));
          list.push(g);
        }
      }
      this.#labels = index;
    }
    let smallest: number[] | undefined;
    for (const k of keys) {
      const list = index.get(k)?.get(selector[k] ?? "");
      if (list === undefined) return new Int32Array(0);
      if (smallest === undefined || list.length < smallest.length) smallest = list;
    }
    return Int32Array.from((smallest ?? []).filter((g) => (this.#free[g] ?? 0) > 0 && matches(this.#nodes[g]?.labels ?? {}, selector)));
  }
}

export function matches(labels: Readonly<Record<string, string>>, selector: Selector): boolean {
  for (const k of Object.keys(selector)) if (labels[k] !== selector[k]) return false;
  return true;
}
