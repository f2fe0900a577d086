/**
 * OpNode: one node where odop can harvest, with its capacity, what the main application
 * uses, and what is harvestable now. Cluster-scoped; written by the controller at a
 * low, bounded rate from the agents' samples (the fast data stays in its memory).
 */
import { z } from "zod";
import { API_VERSION, Conditions, ObjectMeta, strict, Timestamp } from "./meta.ts";
import { Quantity } from "./quantity.ts";

export const OpNodeSpec = strict({
  unschedulable: z.boolean().default(false).describe("Place no new executions here; running ones go on."),
});

/** Condition types of an OpNode. */
export const OPNODE_CONDITIONS = {
  /** False when no sample arrived within the controller's staleness window. Reasons: Fresh, AgentSilent, NeverSeen. */
  Fresh: "Fresh",
} as const;

export const OpNodeStatus = strict({
  source: z.enum(["agent", "slurm"]).optional().describe("Who reports this node: an odop agent, or slurmrestd alone."),
  capacity: strict({
    cores: z.int().min(0),
    memory: Quantity,
    gpus: z.int().min(0).default(0),
  }).optional(),
  mainApplication: strict({
    cores: z.number().min(0).describe("Cores' worth of CPU the main application uses now."),
    memory: Quantity,
    processes: z.int().min(0),
  }).optional(),
  harvestable: strict({
    cores: z.int().min(0),
    cpuset: z.string().max(1024).describe("The harvestable cores, e.g. 4-7,12."),
    memory: Quantity,
    gpus: z.int().min(0).default(0),
  }).optional(),
  running: z.int().min(0).optional().describe("odop executions running on this node."),
  executions: z.array(z.string().max(253)).max(256).optional(),
  lastHeartbeatTime: Timestamp.optional(),
  agent: strict({
    version: z.string().max(64),
    sampleIntervalSeconds: z.number().positive(),
  }).optional(),
  slurm: strict({
    state: z.array(z.string().max(64)).max(16),
    partitions: z.array(z.string().max(256)).max(64).optional(),
    allocatedCores: z.int().min(0).optional(),
  }).optional(),
  conditions: Conditions.optional(),
});
export type OpNodeStatus = z.infer<typeof OpNodeStatus>;

export const OpNode = strict({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("OpNode"),
  metadata: ObjectMeta,
  spec: OpNodeSpec.prefault({}),
  status: OpNodeStatus.optional(),
});
export type OpNode = z.infer<typeof OpNode>;
