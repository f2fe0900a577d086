/**
 * HTTP transfers for staging, on Node's fetch: GET into a file, PUT a file, and the
 * retry loop they share with notifications. Network errors, timeouts and 5xx answers
 * are retried with exponential backoff; 4xx answers never are (the request itself is
 * wrong, and sending it again changes nothing).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { asIoError, StagingError } from "./errors.ts";
import { redactLocation, requestTarget } from "./location.ts";
import { tempPathFor } from "./copy.ts";

export type HttpOptions = {
  /** An attempt fails after this long without progress (no answer, no body bytes). Default 60 s. */
  readonly timeoutMs?: number;
  /** Retries after the first attempt, for network errors, timeouts and 5xx. Default 3. */
  readonly retries?: number;
  /** Wait before the first retry; doubles with each retry, up to maxBackoffMs. Default 1 s. */
  readonly backoffMs?: number;
  /** Default 30 s. */
  readonly maxBackoffMs?: number;
  /** Aborts the transfer (and its waits); it then fails with reason Cancelled. */
  readonly signal?: AbortSignal;
  /** Told before each retry, for logs. */
  readonly onRetry?: (retry: RetryNote) => void;
};

export type RetryNote = {
  /** The redacted URL. */
  readonly target: string;
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  readonly attempts: number;
  readonly delayMs: number;
  readonly error: StagingError;
};

/** What one attempt gets: the signal for its requests, and a way to say it made progress. */
export type Attempt = {
  readonly signal: AbortSignal;
  progress(): void;
};

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_RETRIES = 3;
const DEFAULT_BACKOFF_MS = 1000;
const DEFAULT_MAX_BACKOFF_MS = 30_000;

/**
 * Runs `attempt` until it succeeds, fails permanently, or has been retried
 * `options.retries` times. Whatever it throws comes out as a StagingError.
 */
export async function withRetries<T>(target: string, options: HttpOptions, attempt: (a: Attempt) => Promise<T>): Promise<T> {
  const attempts = 1 + Math.max(0, options.retries ?? DEFAULT_RETRIES);
  for (let n = 1; ; n++) {
    const watchdog = startWatchdog(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.signal);
    let error: StagingError;
    try {
      return await attempt({ signal: watchdog.signal, progress: watchdog.touch });
    } catch (thrown) {
      error = classify(thrown, target, watchdog.timedOut(), options.signal);
    } finally {
      watchdog.stop();
    }
    if (!error.transient || n >= attempts) throw error;
    const delayMs = backoff(n, options);
    options.onRetry?.({ target, attempt: n, attempts, delayMs, error });
    try {
      await sleep(delayMs, undefined, options.signal === undefined ? {} : { signal: options.signal });
    } catch (abort) {
      throw cancelled(target, abort);
    }
  }
}

/** Exponential backoff with jitter, so that many nodes retrying one server spread out. */
function backoff(retry: number, options: HttpOptions): number {
  const base = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const ceiling = Math.min(options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS, base * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

type Watchdog = {
  readonly signal: AbortSignal;
  readonly touch: () => void;
  readonly stop: () => void;
  readonly timedOut: () => boolean;
};

/** An abort signal that fires after `ms` without a touch, or when `parent` aborts. */
function startWatchdog(ms: number, parent: AbortSignal | undefined): Watchdog {
  const controller = new AbortController();
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    controller.abort(new StagingError("Network", `no progress for ${ms} ms`, { transient: true }));
  }, ms);
  const onAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted === true) onAbort();
  parent?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    touch: () => {
      timer.refresh();
    },
    stop: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onAbort);
    },
    timedOut: () => fired,
  };
}

function classify(thrown: unknown, target: string, timedOut: boolean, parent: AbortSignal | undefined): StagingError {
  if (parent?.aborted === true) return cancelled(target, thrown);
  if (timedOut) return new StagingError("Network", `${target}: timed out: ${describe(thrown)}`, { transient: true, cause: thrown });
  if (thrown instanceof StagingError) return thrown;
  // fetch reports every connection problem (refused, reset, DNS, TLS) as a TypeError.
  if (thrown instanceof TypeError) {
    return new StagingError("Network", `${target}: request failed: ${describe(thrown)}`, { transient: true, cause: thrown });
  }
  return asIoError(thrown, target);
}

function cancelled(target: string, cause: unknown): StagingError {
  return new StagingError("Cancelled", `${target}: cancelled`, { cause });
}

/** The most specific words in an error and its causes, e.g. "fetch failed (ECONNREFUSED)". */
function describe(error: unknown): string {
  const words: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0) current = current.errors[0];
    if (!(current instanceof Error)) {
      words.push(String(current));
      break;
    }
    const code = (current as { code?: unknown }).code;
    words.push(typeof code === "string" ? `${current.message} [${code}]` : current.message);
    current = current.cause;
  }
  return words.filter((w) => w !== "").join(": ") || "unknown error";
}

/**
 * The error for a non-2xx answer: 404 and 410 mean NotFound, 5xx are transient, and a
 * redirect (where it is not followed) asks for the final URL. Includes the start of the
 * answer's body, which is where servers say what they did not like.
 */
export async function statusError(response: Response, target: string): Promise<StagingError> {
  const snippet = await readSnippet(response);
  const said = snippet === "" ? "" : `: ${snippet}`;
  const status = `HTTP ${response.status}${response.statusText === "" ? "" : ` ${response.statusText}`}`;
  if (response.status === 404 || response.status === 410) return new StagingError("NotFound", `${target}: not found (${status})`);
  if (response.status >= 300 && response.status < 400) {
    const location = response.headers.get("location");
    const where = location === null ? "" : ` to ${redactLocation(location)}`;
    return new StagingError("Http", `${target}: redirected${where} (${status}); give the final URL`);
  }
  return new StagingError("Http", `${target}: ${status}${said}`, { transient: response.status >= 500 });
}

const SNIPPET_BYTES = 512;

/** At most SNIPPET_BYTES of the body as one line; the rest is discarded unread. */
async function readSnippet(response: Response): Promise<string> {
  if (response.body === null) return "";
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // The status already says what matters.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).toString("utf8", 0, Math.min(size, SNIPPET_BYTES));
  return text.replace(/\s+/g, " ").trim().slice(0, 200);
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

function contentLength(headers: Headers): number | undefined {
  const value = headers.get("content-length");
  if (value === null || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

export type Transfer = { readonly bytes: number };

/**
 * GETs `url` into `dest`: the body goes to a temporary file next to `dest`, is checked
 * against content-length, and is renamed into place only when complete, so `dest` is
 * never seen half written. The parent folder must exist.
 */
export async function download(url: URL, dest: string, options: HttpOptions): Promise<Transfer> {
  const { url: requestUrl, headers } = requestTarget(url);
  const target = redactLocation(url.toString());
  return withRetries(target, options, async (attempt) => {
    // identity: the bytes on the server are the bytes staged, and content-length counts them.
    const response = await fetch(requestUrl, {
      headers: { ...headers, "accept-encoding": "identity" },
      redirect: "follow",
      signal: attempt.signal,
    });
    attempt.progress();
    if (!response.ok) throw await statusError(response, target);
    const expected = contentLength(response.headers);
    const temp = tempPathFor(dest);
    let received = 0;
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      if (response.body === null) return;
      for await (const chunk of response.body as ReadableStream<Uint8Array>) {
        attempt.progress();
        received += chunk.length;
        yield chunk;
      }
    };
    try {
      await pipeline(Readable.from(counted()), createWriteStream(temp, { flags: "wx", flush: true }));
      if (expected !== undefined && received !== expected) throw new TypeError("body length differs from content-length");
      await rename(temp, dest);
    } catch (error) {
      await rm(temp, { force: true });
      if (error instanceof TypeError && expected !== undefined && received !== expected) {
        throw new StagingError("Network", `${target}: transfer cut short: received ${received} of ${expected} bytes (content-length)`, {
          transient: true,
          cause: error,
        });
      }
      throw error;
    }
    return { bytes: received };
  });
}

/**
 * PUTs the file at `source` to `url`, streamed, with its content-length. Redirects are
 * not followed: a streamed body cannot be sent twice, so the answer asks for the final URL.
 */
export async function upload(source: string, url: URL, options: HttpOptions): Promise<Transfer> {
  const { url: requestUrl, headers } = requestTarget(url);
  const target = redactLocation(url.toString());
  return withRetries(target, options, async (attempt) => {
    // Stat on each attempt: a retry sends the file as it is now.
    const size = (await stat(source)).size;
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of createReadStream(source) as AsyncIterable<Buffer>) {
        attempt.progress();
        yield chunk;
      }
    };
    const response = await fetch(requestUrl, {
      method: "PUT",
      headers: { ...headers, "content-type": "application/octet-stream", "content-length": String(size) },
      body: ReadableStream.from(chunks()),
      duplex: "half",
      redirect: "manual",
      signal: attempt.signal,
    });
    if (!response.ok) throw await statusError(response, target);
    await discard(response);
    return { bytes: size };
  });
}

/** POSTs a small body; `headers` is called per attempt so that each carries a fresh timestamp. */
export async function post(url: URL, body: string, headers: () => Record<string, string>, options: HttpOptions): Promise<void> {
  const { url: requestUrl, headers: auth } = requestTarget(url);
  const target = redactLocation(url.toString());
  await withRetries(target, options, async (attempt) => {
    const response = await fetch(requestUrl, {
      method: "POST",
      headers: { ...auth, ...headers() },
      body,
      redirect: "manual",
      signal: attempt.signal,
    });
    if (!response.ok) throw await statusError(response, target);
    await discard(response);
  });
}
