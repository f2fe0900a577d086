/** How an execution points to its task: the label and the owner reference both reconcilers set. */
import type { OpTask } from "../api/optask.ts";

/** The label that ties an execution to its task (selectors, `kubectl get opexec -l`). */
export const TASK_LABEL = "odop.io/task";

/** The reference from an execution to its task: the garbage collector deletes the execution with the task. */
export function taskOwner(task: OpTask, uid: string) {
  return { apiVersion: "odop.io/v1alpha1", kind: "OpTask", name: task.metadata.name ?? "", uid, controller: true, blockOwnerDeletion: true };
}
