/** Kubernetes-style conditions: the transition time moves only when the status does. */
import type { Condition } from "../api/meta.ts";

export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** Returns the conditions with `input` set (added or replaced), keeping list order. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  now: string,
  observedGeneration?: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === input.type);
  const previous = index === -1 ? undefined : list[index];
  const next: Condition = {
    ...input,
    lastTransitionTime: previous !== undefined && previous.status === input.status ? previous.lastTransitionTime : now,
    ...(observedGeneration === undefined ? {} : { observedGeneration }),
  };
  if (index === -1) list.push(next);
  else list[index] = next;
  return list;
}

export function conditionOf(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** RFC 3339 with seconds, as Kubernetes writes metav1.Time. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
