/**
 * HTTP to slurmrestd over TCP (`http://host:port`) or a unix socket (`unix:/path`, the
 * syntax of slurmrestd's own listen argument), with node:http.
 *
 * Contracts:
 * - At most `maxConnections` sockets (default 8), kept alive and reused: slurmrestd
 *   limits its connections, and a client that opens one per request piles them up.
 *   Idle sockets are closed after IDLE_SOCKET_MS.
 * - Each attempt has `timeoutMs` (default 10 s) from the moment it is issued (time
 *   queued for a free socket included); past it the request is aborted and gives
 *   SlurmUnreachableError.
 * - GET and DELETE are retried on SlurmUnreachableError a few times with exponential
 *   backoff and full jitter (defaults: 3 retries, 100 ms doubling, at most 800 ms each,
 *   so under ~1 s of waiting): the caller's own backoff does the rest. A timeout is not
 *   retried (a slow slurmrestd needs less load, not more). POST (job submit) is never
 *   retried: it may have reached slurmctld, and a second one could submit twice.
 * - Every request carries X-SLURM-USER-NAME and X-SLURM-USER-TOKEN; the token is never
 *   logged and is blanked out of any text of the answer that reaches an error message.
 */
import { Agent, request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import type { Logger } from "pino";
import type { SlurmAuth } from "./auth.ts";
import { SlurmUnreachableError, type SlurmRequestRef } from "./errors.ts";
import { checkAnswer, type CheckedAnswer } from "./reply.ts";

export type SlurmMethod = "GET" | "POST" | "DELETE";

export type SlurmRequest = {
  method: SlurmMethod;
  /** Absolute path, e.g. "/slurm/v0.0.38/jobs/". */
  path: string;
  query?: Readonly<Record<string, string>>;
  /** Sent as JSON. */
  body?: unknown;
};

/** What adapters need of the transport; tests may fake it. */
export interface SlurmTransport {
  /** The answer's body (JSON) once it is known to be no error; throws the errors of errors.ts. */
  request(request: SlurmRequest): Promise<CheckedAnswer>;
  /** The endpoint, for messages ("unix:/run/slurmrestd.socket"). */
  readonly endpoint: string;
  readonly log: SlurmLog;
  /** Closes the idle sockets; requests after close still work (on new sockets). */
  close(): void;
}

export type RetryOptions = {
  /** Retries after the first attempt (GET, DELETE only). Default 3. */
  retries: number;
  /** First backoff; doubles on each retry. Default 100 ms. */
  baseDelayMs: number;
  /** Cap of one backoff. Default 800 ms. */
  maxDelayMs: number;
};

export type SlurmLog = Pick<Logger, "debug" | "warn">;

export type TransportOptions = {
  /** "http://host:port" or "unix:/absolute/path/to/socket". */
  endpoint: string;
  auth: SlurmAuth;
  /** Per attempt; default 10 s. */
  timeoutMs?: number;
  /** Sockets open at once; default 8. */
  maxConnections?: number;
  retry?: Partial<RetryOptions>;
  log?: SlurmLog;
  /** For tests: the sleep between retries. */
  sleep?: (ms: number) => Promise<void>;
};

/** Where to connect. */
export type Endpoint = { kind: "tcp"; host: string; port: number } | { kind: "unix"; socketPath: string };

/** Idle keep-alive sockets are closed after this, before slurmrestd or a proxy closes them under a new request. */
const IDLE_SOCKET_MS = 4_000;

export const DEFAULT_RETRY: RetryOptions = { retries: 3, baseDelayMs: 100, maxDelayMs: 800 };

const silent: SlurmLog = { debug: () => undefined, warn: () => undefined };

/** Parses an endpoint; throws a RangeError that says what is accepted. */
export function parseEndpoint(endpoint: string): Endpoint {
  const parsed = readEndpoint(endpoint);
  if (typeof parsed === "string") throw new RangeError(`slurmrestd endpoint ${JSON.stringify(endpoint)}: ${parsed}`);
  return parsed;
}

/** What is wrong with an endpoint, or undefined when nothing is. */
export function endpointProblem(endpoint: string): string | undefined {
  const parsed = readEndpoint(endpoint);
  return typeof parsed === "string" ? parsed : undefined;
}

function readEndpoint(endpoint: string): Endpoint | string {
  const accepted = "must be http://host:port or unix:/absolute/path/to/socket (slurmrestd's listen address), e.g. http://127.0.0.1:6820 or unix:/run/slurmrestd/slurmrestd.socket";
  if (endpoint.startsWith("unix:")) {
    const socketPath = endpoint.slice("unix:".length);
    return socketPath.startsWith("/") ? { kind: "unix", socketPath } : `the socket path must be absolute: ${accepted}`;
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) return accepted;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return accepted;
  }
  if (url.protocol !== "http:") return `${url.protocol} is not supported: ${accepted}`;
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    return `give no path, query or credentials: ${accepted}`;
  }
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { kind: "tcp", host, port: url.port === "" ? 80 : Number(url.port) };
}

export function createTransport(options: TransportOptions): SlurmTransport {
  const target = parseEndpoint(options.endpoint);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxConnections = options.maxConnections ?? 8;
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const log = options.log ?? silent;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const agent = new Agent({ keepAlive: true, maxSockets: maxConnections, maxTotalSockets: maxConnections, maxFreeSockets: maxConnections, timeout: IDLE_SOCKET_MS, scheduling: "lifo" });
  const where = target.kind === "unix" ? { socketPath: target.socketPath } : { host: target.host, port: target.port };

  async function once(ref: SlurmRequestRef, fullPath: string, body: string | undefined): Promise<CheckedAnswer> {
    const token = await options.auth.token();
    const headers: Record<string, string> = {
      accept: "application/json",
      "x-slurm-user-name": options.auth.user,
      "x-slurm-user-token": token,
    };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    const requestOptions: RequestOptions = { ...where, agent, method: ref.method, path: fullPath, headers };
    const { status, text } = await send(requestOptions, body, timeoutMs, ref, options.endpoint);
    return checkAnswer(ref, status, redact(text, token));
  }

  return {
    endpoint: options.endpoint,
    log,
    async request(request) {
      const fullPath = request.path + queryString(request.query);
      const ref: SlurmRequestRef = { method: request.method, path: fullPath };
      const body = request.body === undefined ? undefined : JSON.stringify(request.body);
      const retries = request.method === "POST" ? 0 : retry.retries;
      for (let attempt = 0; ; attempt++) {
        try {
          const answer = await once(ref, fullPath, body);
          if (answer.warnings.length > 0) log.warn({ method: ref.method, path: fullPath, warnings: answer.warnings }, "slurmrestd warnings");
          return answer;
        } catch (error) {
          if (!(error instanceof SlurmUnreachableError) || error instanceof TimedOut || attempt >= retries) throw error;
          const delay = Math.random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt);
          log.debug({ method: ref.method, path: fullPath, attempt: attempt + 1, delayMs: Math.round(delay), error: error.message }, "slurmrestd request failed, retrying");
          await sleep(delay);
        }
      }
    },
    close() {
      agent.destroy();
    },
  };
}

/** A SlurmUnreachableError for a request that ran out of time: not retried. */
class TimedOut extends SlurmUnreachableError {}

/** One HTTP exchange: status and body text, or a SlurmUnreachableError. */
function send(options: RequestOptions, body: string | undefined, timeoutMs: number, ref: SlurmRequestRef, endpoint: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: SlurmUnreachableError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    const req = httpRequest(options, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", (error) => fail(new SlurmUnreachableError(ref, `the answer broke off: ${networkDetail(error)}`, res.statusCode, error)));
      res.on("end", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
      });
    });
    const timer = setTimeout(() => fail(new TimedOut(ref, `no answer within ${timeoutMs} ms from ${endpoint}`)), timeoutMs);
    req.on("error", (error) => fail(new SlurmUnreachableError(ref, `not reachable at ${endpoint}: ${networkDetail(error)}`, undefined, error)));
    req.end(body);
  });
}

function queryString(query: Readonly<Record<string, string>> | undefined): string {
  if (query === undefined) return "";
  const params = new URLSearchParams(query).toString();
  return params === "" ? "" : `?${params}`;
}

function networkDetail(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined || error.message.includes(code) ? error.message : `${error.message} (${code})`;
}

/** Blanks the token out of text that may end up in a message (a server that echoes headers). */
function redact(text: string, token: string): string {
  return token.length >= 8 && text.includes(token) ? text.replaceAll(token, "[token]") : text;
}
