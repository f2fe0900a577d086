/**
 * Scheduler decisions waiting to be applied. The scheduler round only records them and
 * enqueues the executions; each is applied by the execution reconciler, the only
 * writer of an execution's status. Until then a start decision holds its cores, so the
 * next round does not hand them out twice.
 */
import type { Decision } from "../scheduler/types.ts";

export class DecisionBox {
  readonly #decisions = new Map<string, Decision>();

  put(decision: Decision): void {
    this.#decisions.set(decision.key, decision);
  }

  take(key: string): Decision | undefined {
    const d = this.#decisions.get(key);
    this.#decisions.delete(key);
    return d;
  }

  forget(key: string): void {
    this.#decisions.delete(key);
  }

  has(key: string): boolean {
    return this.#decisions.has(key);
  }

  /** Start decisions not applied yet: the cores they hold. */
  heldStarts(): Extract<Decision, { type: "start" }>[] {
    return [...this.#decisions.values()].filter((d): d is Extract<Decision, { type: "start" }> => d.type === "start");
  }
}
