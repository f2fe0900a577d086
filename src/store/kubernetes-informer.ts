/**
 * One list+watch loop per kind, shared by every handler of that kind, with a cache of
 * the objects it has seen. Written on client-node's `Watch` (which parses the chunked
 * JSON lines) rather than on `makeInformer`/`ListWatch`, because ListWatch stops for
 * good on the first watch error and reconnects without jitter.
 *
 * Contract:
 * - A handler first receives ADDED for every object in the cache (or, before the first
 *   list, for every listed object), then every change, in order, asynchronously: never
 *   inside `subscribe` or inside the call that caused the change.
 * - The watch starts from the list's resourceVersion and resumes from the newest one
 *   seen (objects and BOOKMARKs). When the server says it is too old (HTTP 410, or an
 *   ERROR event with code 410) the loop lists again and delivers only the difference
 *   against the cache: ADDED for new keys, MODIFIED for a changed resourceVersion,
 *   DELETED for keys that are gone. resourceVersions are compared for equality only.
 * - A dropped connection or a failed request is retried with exponential backoff and
 *   jitter (initialMs · 2^n, capped at maxMs, each delay drawn in [d/2, d]); the count
 *   restarts once a list succeeds or a connection delivers something. A watch that the
 *   client closes for inactivity reconnects at once (its timeout already throttled it).
 * - `stop()` ends the loop and the current connection; nothing is delivered after it.
 */
import { setTimeout as sleepFor } from "node:timers/promises";
import type { Logger } from "pino";
import { statusCodeOf } from "./kubernetes-errors.ts";
import type { WatchEvent } from "./types.ts";

export type ListResult<T> = { items: T[]; resourceVersion: string };

/**
 * Drops metadata.managedFields from an object just read from the API server (in place:
 * it is a fresh copy). odop never reads them, they are often half of an object's size,
 * and a PUT without them leaves the server's as they are.
 */
export function withoutManagedFields<T>(object: T): T {
  const meta = (object as { metadata?: { managedFields?: unknown } } | null)?.metadata;
  if (meta !== undefined && meta !== null && "managedFields" in meta) delete meta.managedFields;
  return object;
}

/** Opens one watch connection; `done` is called once, when it ends (null: closed cleanly). */
export type OpenWatch = (
  resourceVersion: string,
  onEvent: (type: string, object: unknown) => void,
  done: (error: unknown) => void,
) => Promise<{ abort: () => void }>;

export type BackoffOptions = {
  initialMs?: number;
  maxMs?: number;
  /** [0, 1); Math.random by default. */
  random?: () => number;
  /** Waits `ms` or until `signal` aborts; a timer by default. Tests pass their own. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
};

export type InformerOptions<T> = {
  list: () => Promise<ListResult<T>>;
  watch: OpenWatch;
  /** Turns an object from the wire into T (validation happens there). */
  decode: (raw: unknown) => T;
  keyOf: (object: T) => string;
  versionOf: (object: T) => string | undefined;
  log: Logger;
  backoff?: BackoffOptions;
};

type Handler<T> = (event: WatchEvent<T>) => void;

type Outcome = { end: "gone" | "closed" | "timeout" | "error" | "stopped"; error?: unknown; received: number };

export class Informer<T> {
  readonly #options: InformerOptions<T>;
  readonly #handlers = new Set<Handler<T>>();
  readonly #stop = new AbortController();
  #cache = new Map<string, T>();
  #resourceVersion = "";
  #listed = false;
  #started = false;
  #attempt = 0;
  #deliveries: Promise<void> = Promise.resolve();
  #loop: Promise<void> = Promise.resolve();
  #connection: { abort: () => void } | undefined;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
  }

  get stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  /** True once the first list has been applied. */
  get synced(): boolean {
    return this.#listed;
  }

  get size(): number {
    return this.#handlers.size;
  }

  /** The cached objects (copies); empty until synced. */
  cached(): T[] {
    return [...this.#cache.values()].map((o) => structuredClone(o));
  }

  /** The cached object of `key` itself, not a copy: read it, never change it. */
  peek(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** The cached objects themselves, not copies: read them, never change them. */
  values(): IterableIterator<T> {
    return this.#cache.values();
  }

  /** Adds a handler; starts the loop on the first one. Returns its unsubscribe. */
  subscribe(handler: Handler<T>): () => void {
    this.#handlers.add(handler);
    if (this.#listed) {
      const existing = [...this.#cache.values()];
      this.#deliver(() => {
        for (const object of existing) this.#call(handler, { type: "ADDED", object: structuredClone(object) });
      });
    }
    this.start();
    return () => {
      this.#handlers.delete(handler);
    };
  }

  /** Starts the loop without a handler: the cache alone is wanted (peek, values). Idempotent. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.#run().catch((error: unknown) => this.#options.log.error({ err: error }, "watch loop ended by an error"));
  }

  /**
   * Stops the loop and the connection, and waits for the delivery under way. It does
   * not wait for a list request in flight (a silent server could hold it for long):
   * the loop drops that answer and ends by itself.
   */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#connection?.abort();
    await this.#deliveries;
  }

  /** Resolves when the loop has ended (after stop()). */
  ended(): Promise<void> {
    return this.#loop;
  }

  // ------------------------------------------------------------------- the loop

  async #run(): Promise<void> {
    const log = this.#options.log;
    while (!this.stopped) {
      if (!this.#listed || this.#resourceVersion === "") {
        try {
          const { items, resourceVersion } = await this.#options.list();
          if (this.stopped) return;
          this.#applyList(items);
          this.#resourceVersion = resourceVersion;
          this.#listed = true;
          this.#attempt = 0;
        } catch (error) {
          log.warn({ err: error }, "list failed; retrying");
          await this.#backoff();
          continue;
        }
      }
      const outcome = await this.#watchOnce();
      if (this.stopped || outcome.end === "stopped") return;
      if (outcome.received > 0) this.#attempt = 0;
      switch (outcome.end) {
        case "gone":
          log.info({ resourceVersion: this.#resourceVersion }, "watch expired; listing again");
          this.#resourceVersion = "";
          break;
        case "timeout":
          break;
        case "closed":
          if (outcome.received === 0) await this.#backoff();
          break;
        case "error":
          log.warn({ err: outcome.error }, "watch failed; reconnecting");
          await this.#backoff();
          break;
      }
    }
  }

  #watchOnce(): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let received = 0;
      let gone = false;
      let failed: unknown;
      let ended = false;
      let abortWanted = false;
      const finish = (outcome: Outcome) => {
        if (ended) return;
        ended = true;
        this.#connection = undefined;
        resolve(outcome);
      };
      // Lines may arrive before the connection handle does: remember to abort it then.
      const abort = () => {
        abortWanted = true;
        this.#connection?.abort();
      };
      const onEvent = (type: string, object: unknown) => {
        if (ended || gone || failed !== undefined || this.stopped) return;
        if (type === "ERROR") {
          const code = (object as { code?: unknown } | null)?.code;
          if (code === 410) gone = true;
          else failed = new Error(`watch ERROR event: ${JSON.stringify(object)}`);
          abort();
          return;
        }
        received += 1;
        this.#applyEvent(type, object);
      };
      const done = (error: unknown) => {
        if (this.stopped) return finish({ end: "stopped", received });
        if (gone || statusCodeOf(error) === 410) return finish({ end: "gone", received });
        if (failed !== undefined) return finish({ end: "error", error: failed, received });
        if (error === null || error === undefined) return finish({ end: "closed", received });
        if (error instanceof Error && error.name === "TimeoutError") return finish({ end: "timeout", received });
        return finish({ end: "error", error, received });
      };
      this.#options.watch(this.#resourceVersion, onEvent, done).then(
        (connection) => {
          if (ended || abortWanted || this.stopped) connection.abort();
          else this.#connection = connection;
          if (this.stopped) finish({ end: "stopped", received });
        },
        (error: unknown) => done(error ?? new Error("watch could not start")),
      );
    });
  }

  #applyEvent(type: string, raw: unknown): void {
    const version = (raw as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
    if (type === "BOOKMARK") {
      if (typeof version === "string" && version !== "") this.#resourceVersion = version;
      return;
    }
    if (type !== "ADDED" && type !== "MODIFIED" && type !== "DELETED") return;
    const object = this.#options.decode(raw);
    const key = this.#options.keyOf(object);
    const previous = this.#cache.get(key);
    if (type === "DELETED") {
      if (previous !== undefined) {
        this.#cache.delete(key);
        this.#emit({ type: "DELETED", object });
      }
    } else if (previous === undefined) {
      this.#cache.set(key, object);
      this.#emit({ type: "ADDED", object });
    } else if (this.#options.versionOf(previous) !== this.#options.versionOf(object)) {
      this.#cache.set(key, object);
      this.#emit({ type: "MODIFIED", object });
    }
    if (typeof version === "string" && version !== "") this.#resourceVersion = version;
  }

  /** Replaces the cache with a fresh list and delivers the difference. */
  #applyList(items: T[]): void {
    const next = new Map<string, T>();
    for (const object of items) next.set(this.#options.keyOf(object), object);
    for (const [key, previous] of this.#cache) {
      if (!next.has(key)) this.#emit({ type: "DELETED", object: previous });
    }
    for (const [key, object] of next) {
      const previous = this.#cache.get(key);
      if (previous === undefined) this.#emit({ type: "ADDED", object });
      else if (this.#options.versionOf(previous) !== this.#options.versionOf(object)) this.#emit({ type: "MODIFIED", object });
    }
    this.#cache = next;
  }

  async #backoff(): Promise<void> {
    const { initialMs = 500, maxMs = 30_000, random = Math.random, sleep = defaultSleep } = this.#options.backoff ?? {};
    const ceiling = Math.min(maxMs, initialMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    const delay = ceiling / 2 + (random() * ceiling) / 2;
    if (this.stopped) return;
    await sleep(delay, this.#stop.signal);
  }

  // ------------------------------------------------------------------- delivery

  #emit(event: WatchEvent<T>): void {
    const handlers = [...this.#handlers];
    if (handlers.length === 0) return;
    this.#deliver(() => {
      for (const handler of handlers) this.#call(handler, { type: event.type, object: structuredClone(event.object) });
    });
  }

  #call(handler: Handler<T>, event: WatchEvent<T>): void {
    if (!this.#handlers.has(handler) || this.stopped) return;
    try {
      handler(event);
    } catch (error) {
      this.#options.log.error({ err: error }, "watch handler threw");
    }
  }

  #deliver(fn: () => void): void {
    this.#deliveries = this.#deliveries.then(fn);
  }
}

async function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleepFor(ms, undefined, { signal });
  } catch {
    // Aborted by stop(): return at once.
  }
}
