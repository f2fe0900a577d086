/**
 * The node agents' push protocol, version v1: what `odop agent` sends the controller
 * and what the controller answers. Both sides validate with these schemas.
 *
 *   POST /v1/samples
 *   Authorization: Bearer <token>
 *   Content-Type: application/json, Content-Encoding: gzip (optional)
 *   body: AgentPush
 *
 *   200 AgentPushReply      taken (samples already taken before, by seq, are skipped)
 *   400 {error}             the body is not an AgentPush: the error names the field
 *   401 {error}             no or wrong token
 *   413 {error}             the body (or what it inflates to) is over the limit
 *   5xx / no answer         the agent keeps the samples and sends them again, in order
 *
 * Samples carry the agent's clock. The controller puts them on its own clock by the
 * difference between when it received a push and the push's `sentAt` (network delay
 * counts as skew: at most a round trip), so agent clocks need not be synchronised.
 */
import { z } from "zod";
import { NodeSample } from "./sample.ts";

export const AGENT_PUSH_VERSION = "v1";
/** Most samples in one push: ten minutes at one a second. */
export const MAX_SAMPLES_PER_PUSH = 600;

/** What an agent saw of one trigger folder it was asked to watch. */
export const FolderReport = z.strictObject({
  folder: z.string().min(1).max(4096),
  pattern: z.string().min(1).max(1024),
  /** Regular files directly in the folder whose names match the pattern. */
  files: z
    .array(
      z.strictObject({
        path: z.string().min(1).max(4096),
        size: z.number().int().min(0),
        mtimeMs: z.number().min(0),
        /** Some process holds the file open for writing now (from the fd tables in /proc). */
        openForWriting: z.boolean(),
      }),
    )
    .max(10_000),
  /** Why the folder could not be read (missing, no permission); files is then empty. */
  error: z.string().max(1024).optional(),
});
export type FolderReport = z.infer<typeof FolderReport>;

export const AgentPush = z.strictObject({
  version: z.literal(AGENT_PUSH_VERSION),
  /** The node the samples are of (every sample's `node` must be the same). */
  node: z.string().min(1).max(253),
  agent: z.strictObject({
    /** odop's version. */
    version: z.string().min(1).max(64),
    /** Random per agent process: a new one means the agent restarted (its seq starts again). */
    instance: z.string().min(8).max(64),
    sampleIntervalMs: z.number().positive().max(3_600_000),
  }),
  /** When the agent sent this push, by its clock (ms since the epoch). */
  sentAt: z.number().int().min(0),
  /** Sequence number of samples[0]; the others follow without gaps. */
  seq: z.int().min(0),
  samples: z.array(NodeSample).max(MAX_SAMPLES_PER_PUSH),
  /** The trigger folders the controller asked this agent to watch, as they are now. */
  folders: z.array(FolderReport).max(256).optional(),
});
export type AgentPush = z.infer<typeof AgentPush>;

export const WatchRequest = z.strictObject({ folder: z.string().min(1).max(4096), pattern: z.string().min(1).max(1024) });
export type WatchRequest = z.infer<typeof WatchRequest>;

export const AgentPushReply = z.strictObject({
  /** Samples of this push taken now (replayed ones already taken are not counted). */
  accepted: z.int().min(0),
  /** The seq the controller expects next from this agent instance. */
  nextSeq: z.int().min(0),
  /** The trigger folders this node should watch (tasks that target it). */
  watch: z.array(WatchRequest).max(256),
  /** The controller's clock when it answered (ms since the epoch). */
  serverTime: z.number().int().min(0),
});
export type AgentPushReply = z.infer<typeof AgentPushReply>;
