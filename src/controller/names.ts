/**
 * Execution names are derived from what triggered them, so that creating the same
 * execution twice (a restart, a watch event seen twice, two identical triggers) hits
 * AlreadyExists instead of running the work again: depio's "identical tasks are merged".
 */
import { createHash } from "node:crypto";
import { OPTASK_NAME_MAX } from "../api/optask.ts";

/** `<task>-<10 hex chars of sha256(identity)>`: at most 61 characters, a DNS label. */
export function executionName(task: string, identity: string): string {
  if (task.length > OPTASK_NAME_MAX) throw new Error(`task name ${task} is longer than ${OPTASK_NAME_MAX}`);
  return `${task}-${createHash("sha256").update(identity).digest("hex").slice(0, 10)}`;
}
