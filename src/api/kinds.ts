/** The kinds of odop.io/v1alpha1: their schemas, names and the columns `kubectl get` shows. */
import type { z } from "zod";
import { OpExecution } from "./opexecution.ts";
import { OpNode } from "./opnode.ts";
import { OpTask } from "./optask.ts";

export type PrinterColumn = {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  /** 0: always shown; 1: only with `-o wide`. */
  priority?: 0 | 1;
};

export type KindDefinition = {
  kind: "OpTask" | "OpExecution" | "OpNode";
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Namespaced" | "Cluster";
  schema: z.ZodType;
  columns: PrinterColumn[];
};

const AGE: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Time since creation" };
const condition = (type: string): string => `.status.conditions[?(@.type=="${type}")].status`;

export const KINDS: readonly KindDefinition[] = [
  {
    kind: "OpTask",
    plural: "optasks",
    singular: "optask",
    shortNames: ["optask", "opt"],
    scope: "Namespaced",
    schema: OpTask,
    columns: [
      { name: "Trigger", type: "string", jsonPath: ".status.trigger", description: "What creates executions" },
      { name: "Active", type: "integer", jsonPath: ".status.active", description: "Executions not yet finished" },
      { name: "Last", type: "string", jsonPath: ".status.lastExecution.phase", description: "Phase of the newest finished execution" },
      { name: "Ready", type: "string", jsonPath: condition("Ready"), description: "Spec valid and trigger armed" },
      { name: "Backend", type: "string", jsonPath: ".spec.backend", description: "Where executions run", priority: 1 },
      { name: "Runs", type: "integer", jsonPath: ".status.runs", description: "Executions created so far", priority: 1 },
      { name: "Succeeded", type: "integer", jsonPath: ".status.succeeded", description: "Executions that succeeded", priority: 1 },
      { name: "Failed", type: "integer", jsonPath: ".status.failed", description: "Executions that failed", priority: 1 },
      AGE,
    ],
  },
  {
    kind: "OpExecution",
    plural: "opexecutions",
    singular: "opexecution",
    shortNames: ["opexec", "opx"],
    scope: "Namespaced",
    schema: OpExecution,
    columns: [
      { name: "Task", type: "string", jsonPath: ".spec.taskRef.name", description: "The OpTask" },
      { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Lifecycle phase" },
      { name: "Node", type: "string", jsonPath: ".status.node", description: "Where it runs" },
      { name: "Cores", type: "string", jsonPath: ".status.cpuset", description: "Cores it is pinned to" },
      { name: "Trigger", type: "string", jsonPath: ".spec.trigger.reason", description: "Why it was created" },
      { name: "Action", type: "string", jsonPath: ".spec.action", description: "What was asked: Run, Pause, Stop, Skip", priority: 1 },
      { name: "Reason", type: "string", jsonPath: ".status.reason", description: "Why it is in this phase", priority: 1 },
      { name: "Attempts", type: "integer", jsonPath: ".status.attempts", description: "Attempts so far", priority: 1 },
      { name: "Started", type: "date", jsonPath: ".status.startedAt", description: "When its first stage started", priority: 1 },
      AGE,
    ],
  },
  {
    kind: "OpNode",
    plural: "opnodes",
    singular: "opnode",
    shortNames: ["opnode", "opn"],
    scope: "Cluster",
    schema: OpNode,
    columns: [
      { name: "Cores", type: "integer", jsonPath: ".status.capacity.cores", description: "Cores on the node" },
      { name: "Harvestable", type: "integer", jsonPath: ".status.harvestable.cores", description: "Cores idle now" },
      { name: "Memory", type: "string", jsonPath: ".status.harvestable.memory", description: "Memory free now" },
      { name: "Running", type: "integer", jsonPath: ".status.running", description: "odop executions running" },
      { name: "Fresh", type: "string", jsonPath: condition("Fresh"), description: "Samples arrive in time" },
      { name: "Heartbeat", type: "date", jsonPath: ".status.lastHeartbeatTime", description: "Newest sample" },
      { name: "Free-Cores", type: "string", jsonPath: ".status.harvestable.cpuset", description: "Idle cores", priority: 1 },
      { name: "Source", type: "string", jsonPath: ".status.source", description: "agent or slurm", priority: 1 },
      AGE,
    ],
  },
];

export function kindDefinition(kind: string): KindDefinition | undefined {
  return KINDS.find((k) => k.kind === kind);
}
