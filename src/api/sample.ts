/**
 * A node sample: what the sampler (in the embedded engine) or an agent (pushing to the
 * controller) measured on one node at one instant. Versioned: the push protocol of the
 * agents carries it, and both sides validate it with this schema.
 */
import { z } from "zod";

export const SAMPLE_VERSION = "v1";

export const CoreSample = z.strictObject({
  /** Logical CPU number, as the kernel numbers it (taskset, /proc/stat). */
  id: z.int().min(0).max(65_535),
  /** Share of the core busy over the last interval, 0..1, from all processes. */
  total: z.number().min(0).max(1),
  /** Share of the core used by the main application's threads, 0..1. */
  main: z.number().min(0).max(1),
  /** Share of the core used by odop's own executions, 0..1. */
  odop: z.number().min(0).max(1),
});
export type CoreSample = z.infer<typeof CoreSample>;

export const NodeSample = z.strictObject({
  version: z.literal(SAMPLE_VERSION),
  node: z.string().min(1).max(253),
  /** Milliseconds since the epoch, by the sampling machine's clock. */
  time: z.number().int().min(0),
  /** Length of the interval the shares were measured over, in milliseconds. */
  intervalMs: z.number().positive().max(3_600_000),
  cores: z.array(CoreSample).max(65_536),
  memory: z.strictObject({
    totalBytes: z.number().int().min(0),
    availableBytes: z.number().int().min(0),
    /** Resident memory of the main application's processes. */
    mainBytes: z.number().int().min(0),
    /** Resident memory of odop's executions. */
    odopBytes: z.number().int().min(0),
  }),
  main: z.strictObject({
    /** Processes of the main application found this time (0: none found or none configured). */
    processes: z.int().min(0),
    /** Cores' worth of CPU the main application used over the interval. */
    cpu: z.number().min(0),
  }),
  /** Disk and network throughput of the whole node over the interval (agents; absent when not measured). */
  io: z
    .strictObject({
      diskReadBytesPerSecond: z.number().min(0),
      diskWriteBytesPerSecond: z.number().min(0),
      networkReceiveBytesPerSecond: z.number().min(0),
      networkTransmitBytesPerSecond: z.number().min(0),
    })
    .optional(),
  /** GPUs (NVIDIA through nvidia-smi); absent when the node has none or they cannot be read. */
  gpus: z
    .array(
      z.strictObject({
        /** Index as nvidia-smi numbers it. */
        id: z.int().min(0).max(1024),
        /** Share of the interval the GPU was busy, 0..1. */
        utilization: z.number().min(0).max(1),
        memoryUsedBytes: z.number().int().min(0),
        memoryTotalBytes: z.number().int().min(0),
      }),
    )
    .max(1024)
    .optional(),
});
export type NodeSample = z.infer<typeof NodeSample>;
