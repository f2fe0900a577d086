/**
 * AgentPusher: sends an agent's samples (and folder reports) to the controller by the push
 * protocol of src/api/agent-push.ts: POST <controller>/v1/samples, gzipped JSON, bearer token.
 *
 * Contracts:
 * - Every sample gets the next seq of this agent instance (from 0; `instance` is random per
 *   process). A push carries consecutive samples from the oldest not yet taken, at most
 *   MAX_SAMPLES_PER_PUSH; only one request is in flight at a time, so they arrive in order.
 * - Batching: a push goes when `batchSamples` samples wait (default 1: every sample), or
 *   `batchMs` after the first of them (default 1 s), or at once after {@link reportFolders}
 *   with `urgent` (a trigger file changed).
 * - The buffer holds at most `bufferSamples` samples (default 600: ten minutes at 1 s)
 *   not yet taken; when it is full the oldest is dropped, counted, and logged once per outage.
 * - 200: the samples of the push and every seq below the reply's `nextSeq` are taken and
 *   leave the buffer; the reply goes to `onReply` (its `watch` list drives the trigger folders).
 * - No answer, a timeout, 5xx, 401 (the token may be rotated: `token()` is asked again on
 *   every request) or any other status: the samples stay, and the push is retried after an
 *   exponential backoff with full jitter (`initialMs` doubling to `maxMs`, default 250 ms to
 *   30 s; the delay is uniform in [0, that]). Logged once per outage, and once on recovery.
 * - 400: the controller can never take that body: its error is logged (once per message)
 *   and the batch is dropped (`rejected`). 413: the batch is split in two and each half
 *   sent; a single sample still too large is dropped (`rejected`); folder reports are
 *   dropped before a lone sample is.
 * - {@link flush} sends what it can within a deadline (shutdown); {@link close} stops.
 */
import { randomUUID } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Logger } from "pino";
import { AGENT_PUSH_VERSION, type AgentPush, type AgentPushReply, type FolderReport, MAX_SAMPLES_PER_PUSH } from "../api/agent-push.ts";
import type { NodeSample } from "../api/sample.ts";
import { errorOf, parseReply, sendPush } from "./push-transport.ts";
import { type Entry, SampleBuffer } from "./sample-buffer.ts";

export type AgentLog = Pick<Logger, "debug" | "info" | "warn" | "error">;

export interface PusherOptions {
  /** The controller's base URL (http or https); pushes go to <url>/v1/samples. */
  controller: string;
  /** The bearer token, asked on every request (a rotated Secret file is picked up). May throw. */
  token: () => string;
  node: string;
  /** odop's version. */
  version: string;
  sampleIntervalMs: number;
  instance?: string;
  batchSamples?: number;
  batchMs?: number;
  bufferSamples?: number;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /** PEM CA certificates the controller's TLS certificate is checked against (default: the system's). */
  ca?: string;
  onReply?: (reply: AgentPushReply) => void;
  log: AgentLog;
  random?: () => number;
  now?: () => number;
}

export interface PusherStats {
  /** Samples the controller took. */
  sent: number;
  /** Samples dropped because the buffer was full (oldest first). */
  dropped: number;
  /** Samples dropped because the controller refused them for good (400, 413). */
  rejected: number;
  /** Samples waiting now. */
  buffered: number;
  /** Requests answered 200. */
  pushes: number;
  /** Requests that failed (no answer, timeout, or a status other than 200). */
  failures: number;
}

type Outcome = "taken" | "retry" | "next";


export class AgentPusher {
  readonly instance: string;
  readonly #o: PusherOptions;
  readonly #url: URL;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #batchSamples: number;
  readonly #batchMs: number;
  readonly #timeoutMs: number;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #buffer: SampleBuffer;
  #folders: FolderReport[] | undefined;
  #foldersVersion = 0;
  #urgent = false;
  /** Samples below this seq were due already: they go without waiting for a batch. */
  #overdueBelow = 0;
  /** Most samples per push now: halved by each 413, back to the maximum once the buffer is empty. */
  #limit: number;
  #attempts = 0;
  #draining: Promise<void> | undefined;
  #batchTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #flushing = false;
  /** Why the controller could not be reached, while it cannot; undefined when it could last time. */
  #outage: { since: number; problem: string; dropped: number } | undefined;
  #last400: string | undefined;
  readonly #stats: PusherStats = { sent: 0, dropped: 0, rejected: 0, buffered: 0, pushes: 0, failures: 0 };

  constructor(options: PusherOptions) {
    this.#o = options;
    this.instance = options.instance ?? randomUUID();
    this.#url = new URL("v1/samples", options.controller.endsWith("/") ? options.controller : `${options.controller}/`);
    const agentOptions = { keepAlive: true, maxSockets: 1 };
    this.#agent =
      this.#url.protocol === "https:"
        ? new HttpsAgent({ ...agentOptions, ...(options.ca === undefined ? {} : { ca: options.ca }) })
        : new HttpAgent(agentOptions);
    this.#batchSamples = Math.max(1, options.batchSamples ?? 1);
    this.#batchMs = Math.max(0, options.batchMs ?? 1000);
    this.#buffer = new SampleBuffer(options.bufferSamples ?? 600);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#initialMs = options.backoff?.initialMs ?? 250;
    this.#maxMs = options.backoff?.maxMs ?? 30_000;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    this.#limit = Math.min(MAX_SAMPLES_PER_PUSH, this.#buffer.capacity);
  }

  /** Queues a sample (dropping the oldest when the buffer is full) and sends when a batch is due. */
  push(sample: NodeSample): void {
    if (this.#closed) return;
    if (this.#buffer.add(sample)) {
      this.#stats.dropped++;
      if (this.#outage !== undefined && this.#outage.dropped++ === 0) {
        this.#o.log.warn({ bufferSamples: this.#buffer.capacity }, "agent buffer full: dropping the oldest samples until the controller answers");
      }
    }
    this.#kick();
  }

  /** The trigger folders as they are now, sent with the next push (at once when `urgent`). */
  reportFolders(folders: FolderReport[], urgent = false): void {
    if (this.#closed) return;
    this.#folders = folders;
    this.#foldersVersion++;
    if (urgent) this.#urgent = true;
    this.#kick();
  }

  stats(): PusherStats {
    return { ...this.#stats, buffered: this.#buffer.length };
  }

  /**
   * Sends everything waiting, retrying with backoff, until it is all taken or `timeoutMs`
   * has passed; true when nothing is left.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = this.#now() + timeoutMs;
    this.#flushing = true; // #kick starts nothing meanwhile: one request at a time
    try {
      while (!this.#closed && (this.#buffer.length > 0 || this.#folders !== undefined)) {
        const left = deadline - this.#now();
        if (left <= 0) break;
        if (this.#draining !== undefined) {
          await Promise.race([this.#draining, sleep(left)]); // a request in flight may outlast the deadline
          continue;
        }
        this.#clearTimers(); // this loop retries by itself
        const outcome = await this.#attempt(Math.min(this.#timeoutMs, left));
        if (outcome === "retry") await sleep(Math.min(this.#backoffMs(), Math.max(0, deadline - this.#now())));
      }
    } finally {
      this.#flushing = false;
    }
    this.#kick();
    return this.#buffer.length === 0 && this.#folders === undefined;
  }

  /** Stops sending and closes the keep-alive connection; what is buffered is lost. */
  close(): void {
    this.#closed = true;
    this.#clearTimers();
    this.#agent.destroy();
  }

  #clearTimers(): void {
    clearTimeout(this.#batchTimer);
    clearTimeout(this.#retryTimer);
    this.#batchTimer = undefined;
    this.#retryTimer = undefined;
  }

  /** Starts a drain when a push is due, else arms the batch timer. */
  #kick(): void {
    if (this.#closed || this.#flushing || this.#draining !== undefined || this.#retryTimer !== undefined) return;
    const waiting = this.#buffer.length;
    if (waiting === 0 && !(this.#urgent && this.#folders !== undefined)) {
      this.#urgent = false;
      return;
    }
    if (this.#urgent || waiting >= this.#batchSamples || this.#overdue()) {
      clearTimeout(this.#batchTimer);
      this.#batchTimer = undefined;
      this.#draining = this.#drain().finally(() => {
        this.#draining = undefined;
        this.#kick();
      });
      return;
    }
    this.#batchTimer ??= setTimeout(() => {
      this.#batchTimer = undefined;
      this.#urgent = true;
      this.#kick();
    }, this.#batchMs);
  }

  /** Pushes until what is left is not due; on a failure arms the retry timer and returns. */
  async #drain(): Promise<void> {
    while (!this.#closed) {
      if (this.#buffer.length === 0 && this.#folders === undefined) return;
      const outcome = await this.#attempt(this.#timeoutMs);
      if (outcome === "retry") {
        if (this.#closed) return;
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#urgent = true;
          this.#kick();
        }, this.#backoffMs());
        return;
      }
      if (!this.#urgent && this.#buffer.length < this.#batchSamples && !this.#overdue()) return;
    }
  }

  /** Whether the oldest sample waiting was due before (a failed push, or the second half of a split one). */
  #overdue(): boolean {
    return (this.#buffer.firstSeq ?? Number.POSITIVE_INFINITY) < this.#overdueBelow;
  }

  #backoffMs(): number {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(30, this.#attempts - 1));
    return this.#random() * ceiling;
  }

  /** One request with the oldest samples (and the folder reports). */
  async #attempt(timeoutMs: number): Promise<Outcome> {
    const batch = this.#buffer.oldest(this.#limit);
    const folders = this.#folders;
    const foldersVersion = this.#foldersVersion;
    this.#urgent = false;
    const push: AgentPush = {
      version: AGENT_PUSH_VERSION,
      node: this.#o.node,
      agent: { version: this.#o.version, instance: this.instance, sampleIntervalMs: this.#o.sampleIntervalMs },
      sentAt: Math.floor(this.#now()),
      seq: batch[0]?.seq ?? this.#buffer.nextSeq,
      samples: batch.map((e) => e.sample),
      ...(folders === undefined ? {} : { folders }),
    };
    let status: number;
    let text: string;
    let token: string;
    try {
      token = this.#o.token();
    } catch (error) {
      return this.#failed(`cannot read the agent token: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      ({ status, text } = await sendPush(this.#url, push, token, this.#agent, timeoutMs));
    } catch (error) {
      return this.#failed(`controller not reachable: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (status === 200) {
      this.#recovered();
      this.#taken(batch, this.#replyOf(text));
      if (this.#foldersVersion === foldersVersion) this.#folders = undefined;
      return "taken";
    }
    const detail = errorOf(text);
    if (status === 400) {
      this.#recovered();
      if (detail !== this.#last400) this.#o.log.error({ status, error: detail, samples: batch.length }, "the controller refused a push for good: dropping it");
      this.#last400 = detail;
      this.#drop(batch);
      if (this.#foldersVersion === foldersVersion) this.#folders = undefined;
      return "next";
    }
    if (status === 413) {
      this.#recovered();
      if (batch.length > 1) {
        this.#limit = Math.ceil(batch.length / 2);
        this.#overdueBelow = Math.max(this.#overdueBelow, (batch.at(-1)?.seq ?? -1) + 1);
      } else if (folders !== undefined && this.#foldersVersion === foldersVersion) {
        this.#o.log.error({ status, error: detail, folders: folders.length }, "the controller refused the folder reports as too large: dropping them");
        this.#folders = undefined;
      } else {
        this.#o.log.error({ status, error: detail }, "the controller refused one sample as too large: dropping it");
        this.#drop(batch);
      }
      return "next";
    }
    const hint = status === 401 || status === 403 ? " (is the agent token right?)" : "";
    return this.#failed(`controller answered HTTP ${status}${hint}${detail === "" ? "" : `: ${detail}`}`);
  }

  #replyOf(text: string): AgentPushReply | undefined {
    const reply = parseReply(text);
    if (reply !== undefined) return reply;
    this.#o.log.warn({ answer: text.slice(0, 300) }, "the controller's answer to a push is not an AgentPushReply");
    return undefined;
  }

  /** Removes what the controller took: the batch and every seq below nextSeq. */
  #taken(batch: readonly Entry[], reply: AgentPushReply | undefined): void {
    this.#stats.pushes++;
    this.#stats.sent += this.#buffer.removeBelow(Math.max((batch.at(-1)?.seq ?? -1) + 1, reply?.nextSeq ?? 0));
    if (this.#buffer.length === 0) this.#limit = Math.min(MAX_SAMPLES_PER_PUSH, this.#buffer.capacity);
    if (reply !== undefined) this.#o.onReply?.(reply);
  }

  #drop(batch: readonly Entry[]): void {
    this.#stats.rejected += this.#buffer.removeBelow((batch.at(-1)?.seq ?? -1) + 1);
  }

  #failed(problem: string): Outcome {
    this.#stats.failures++;
    this.#overdueBelow = this.#buffer.nextSeq;
    this.#attempts++;
    if (this.#outage === undefined) {
      this.#outage = { since: this.#now(), problem, dropped: 0 };
      this.#o.log.warn({ problem, buffered: this.#buffer.length }, "cannot push samples: keeping them and retrying");
    } else if (this.#outage.problem !== problem) {
      this.#outage.problem = problem;
      this.#o.log.warn({ problem, buffered: this.#buffer.length }, "still cannot push samples");
    }
    return "retry";
  }

  #recovered(): void {
    this.#attempts = 0;
    const outage = this.#outage;
    if (outage === undefined) return;
    this.#outage = undefined;
    this.#o.log.info(
      { downMs: this.#now() - outage.since, dropped: outage.dropped, buffered: this.#buffer.length },
      "the controller takes samples again",
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
