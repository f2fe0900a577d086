/**
 * PodSpecError: an execution that cannot become a pod as asked (a name Kubernetes would
 * refuse, a task without an image, a template that cannot be merged). It is permanent
 * for the same inputs: the controller reports it (reason as the condition reason), it
 * does not retry it.
 */

/**
 * Reasons of a PodSpecError:
 * - `InvalidName`: the pod name, a label or the annotations break Kubernetes' rules.
 * - `NoImage`: the task has no run.image.
 * - `NoOwnerUid`: the OpExecution has no metadata.uid (it was never read from the API).
 * - `InvalidTemplate`: the pod template has containers odop does not know.
 */
export type PodSpecErrorReason = "InvalidName" | "NoImage" | "NoOwnerUid" | "InvalidTemplate";

export class PodSpecError extends Error {
  override name = "PodSpecError";
  readonly reason: PodSpecErrorReason;
  constructor(reason: PodSpecErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}
