/**
 * Where the scheduler's view of the nodes comes from. The embedded mode samples this
 * machine in-process (LocalNodeSource); the Kubernetes and Slurm controllers will read
 * what agents push (issue: node agents) behind the same interface.
 */
import type { OpNodeStatus } from "../api/opnode.ts";
import type { NodeSample } from "../api/sample.ts";
import type { NodeView } from "../scheduler/types.ts";
import type { NodeWindow } from "../scheduler/window.ts";

export interface NodeSource {
  /** Called once per interval: take or collect the newest samples. */
  refresh(): Promise<void>;
  /** The nodes as the scheduler sees them at `now`; [] until something is known. */
  views(now: number): NodeView[];
  /** The newest sample of the node odop runs on, when there is one (for displays). */
  latest(): NodeSample | undefined;
  /** OpNode statuses to publish (written at a bounded rate by the engine's OpNodeWriter); absent: none. */
  opNodes?(now: string): { name: string; status: OpNodeStatus }[];
}

/** This machine, sampled in-process, through one node window. */
export class LocalNodeSource implements NodeSource {
  readonly #window: NodeWindow;
  readonly #sample: () => Promise<NodeSample>;
  #latest: NodeSample | undefined;

  constructor(window: NodeWindow, sample: () => Promise<NodeSample>) {
    this.#window = window;
    this.#sample = sample;
  }

  async refresh(): Promise<void> {
    const sample = await this.#sample();
    this.#latest = sample;
    this.#window.add(sample);
  }

  views(now: number): NodeView[] {
    return this.#latest === undefined ? [] : [this.#window.view(now)];
  }

  latest(): NodeSample | undefined {
    return this.#latest;
  }
}

/** `source` with placements on node `name` only; every node still shows (OpNodes). */
export function onlyNode(source: NodeSource, name: string): NodeSource {
  return {
    refresh: () => source.refresh(),
    views: (now) => source.views(now).filter((v) => v.name === name),
    latest: () => source.latest(),
    ...(source.opNodes === undefined ? {} : { opNodes: (now: string) => source.opNodes?.(now) ?? [] }),
  };
}
