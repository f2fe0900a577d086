/**
 * The controller's ingest endpoint: node agents push their samples here
 * (src/api/agent-push.ts defines the protocol; AgentNodeSource.take is what `onPush`
 * normally calls).
 *
 *   POST /v1/samples   200 AgentPushReply; 400 not an AgentPush (the error names the
 *                      field and what was expected, or a sample of another node);
 *                      401 no or wrong bearer token; 413 body, or what it inflates to,
 *                      over maxBodyBytes; 415 not JSON, or an encoding other than gzip;
 *                      405 another method; 500 onPush threw
 *   GET  /healthz      200 "ok"
 *   anything else      404
 *
 * Contracts:
 * - The token is read on every request (a rotated Secret applies at once) and compared
 *   in constant time; without one every push is refused. It is never logged.
 * - Memory per request is bounded by maxBodyBytes twice over: the compressed body is not
 *   read past it, and inflating stops as soon as the output passes it (a gzip bomb costs
 *   maxBodyBytes of output, not its claimed size). Bodies of unknown length or over
 *   64 KiB are inflated as they arrive; smaller ones in one call once read (cheaper).
 * - A request refused before its body was read is answered at once; the rest of the body
 *   is then read and discarded up to maxBodyBytes or LINGER_MS more, and the connection
 *   closed if it goes on: closing with unread data would make the client's kernel reset
 *   the connection, and the agent would see no answer and send the same push again.
 * - `receivedAt` is taken when the request's headers arrive: it is what the agent's
 *   `sentAt` is compared with to put its samples on the controller's clock.
 * - Refusals are logged at most once per status every LOG_EVERY_MS, with a count of the
 *   ones left out: a fleet with a wrong token must not flood the log.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createGunzip, gunzipSync } from "node:zlib";
import type { Logger } from "pino";
import type { z } from "zod";
import { AgentPush, type AgentPushReply } from "../../api/agent-push.ts";
import { isAgentPush } from "./fast-check.ts";

export const INGEST_PATH = "/v1/samples";
export const DEFAULT_MAX_BODY_BYTES = 4 * 2 ** 20;
/** A refused request's body is read and discarded for at most this long before its connection is closed. */
export const LINGER_MS = 5000;
const LOG_EVERY_MS = 10_000;
/** Gzip bodies up to this size (by Content-Length) are inflated in one call: cheaper than a stream for the usual push. */
const INFLATE_AT_ONCE_BYTES = 64 * 1024;

export type IngestServerOptions = {
  host: string;
  port: number;
  /** The agents' bearer token, read on every request; undefined: none configured, every push is refused. */
  token: () => string | undefined;
  /** Largest body, compressed and inflated. Default 4 MiB. */
  maxBodyBytes?: number;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Takes a valid push; what it returns is the reply. A throw answers 500 (the agent sends the push again). */
  onPush: (push: AgentPush, receivedAt: number) => AgentPushReply | Promise<AgentPushReply>;
  log: Logger;
  /** The controller's clock for receivedAt. Default Date.now. */
  now?: () => number;
};

export type IngestServer = {
  server: Server;
  port: number;
  /** e.g. http://127.0.0.1:8444 */
  url: string;
  /** Stops accepting, closes idle keep-alive connections, and waits for requests in flight. */
  close(): Promise<void>;
};

type Body = { ok: true; data: Buffer } | { ok: false; status: 400 | 413; error: string };

export async function startIngestServer(options: IngestServerOptions): Promise<IngestServer> {
  const ingest = new Ingest(options);
  const handler = (req: IncomingMessage, res: ServerResponse): void => ingest.handle(req, res);
  const server: Server = options.tls === undefined ? createHttpServer(handler) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler);
  // Slow clients get 10 s to send their headers and 30 s for a whole push. Keep-alive
  // outlasts the agents' push interval: a server that closes an idle connection just as
  // the agent reuses it turns a push into a retry.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    server,
    port,
    url: `${options.tls === undefined ? "http" : "https"}://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeIdleConnections();
      }),
  };
}

class Ingest {
  readonly #o: IngestServerOptions;
  readonly #max: number;
  readonly #now: () => number;
  readonly #logged = new Map<number, { at: number; suppressed: number }>();
  readonly #tokens = new TokenCheck();

  constructor(options: IngestServerOptions) {
    this.#o = options;
    this.#max = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#now = options.now ?? Date.now;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const receivedAt = this.#now();
    this.#push(req, res, receivedAt).catch((error: unknown) => {
      this.#o.log.error({ err: error }, "could not take agent push");
      if (!res.headersSent) this.#refuse(req, res, 500, "the controller could not take this push");
      else res.destroy();
    });
  }

  async #push(req: IncomingMessage, res: ServerResponse, receivedAt: number): Promise<void> {
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    if (path === "/healthz") {
      if (req.method === "GET" || req.method === "HEAD") return send(res, 200, "ok\n", "text/plain; charset=utf-8");
      return this.#refuse(req, res, 405, "method not allowed", { allow: "GET, HEAD" });
    }
    if (path !== INGEST_PATH) return this.#refuse(req, res, 404, "not found");
    if (req.method !== "POST") return this.#refuse(req, res, 405, `${INGEST_PATH} takes POST only`, { allow: "POST" });

    const token = this.#o.token();
    if (token === undefined || token === "") return this.#refuse(req, res, 401, "the controller has no agent token configured");
    if (!this.#tokens.matches(req.headers.authorization, token)) return this.#refuse(req, res, 401, "missing or wrong bearer token");

    const media = (req.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase();
    if (media !== "application/json") return this.#refuse(req, res, 415, "expected Content-Type: application/json");
    const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
    if (encoding !== "identity" && encoding !== "gzip" && encoding !== "x-gzip") return this.#refuse(req, res, 415, "expected Content-Encoding: gzip or none");
    const length = req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);
    if (length !== undefined && length > this.#max) return this.#refuse(req, res, 413, `the body (${length} bytes) is over the limit of ${this.#max} bytes`);

    const body = await readBody(req, encoding !== "identity", length, this.#max);
    if (!body.ok) return this.#refuse(req, res, body.status, body.error);

    let json: unknown;
    try {
      json = JSON.parse(body.data.toString("utf8"));
    } catch (error) {
      return this.#refuse(req, res, 400, `body is not JSON: ${(error as Error).message}`);
    }
    const checked = checkPush(json);
    if (!checked.ok) return this.#refuse(req, res, 400, checked.error);
    const push = checked.push;
    const other = push.samples.findIndex((s) => s.node !== push.node);
    if (other !== -1) {
      return this.#refuse(req, res, 400, `samples.${other}.node: expected ${JSON.stringify(push.node)} (the push's node), got ${JSON.stringify(push.samples[other]?.node)}`);
    }
    const reply = await this.#o.onPush(push, receivedAt);
    send(res, 200, JSON.stringify(reply), "application/json");
  }

  /**
   * Answers an error now. What is left of the body is read and thrown away (see the
   * module comment); past maxBodyBytes or LINGER_MS the connection is closed instead.
   */
  #refuse(req: IncomingMessage, res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
    this.#note(status, error, req);
    send(res, status, JSON.stringify({ error }), "application/json", headers);
    if (req.complete) return;
    let discarded = 0;
    const close = (): void => {
      req.socket.destroy();
    };
    const timer = setTimeout(close, LINGER_MS);
    timer.unref();
    req.on("data", (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > this.#max) close();
    });
    req.once("end", () => clearTimeout(timer));
    req.once("close", () => clearTimeout(timer));
    req.resume();
  }

  #note(status: number, error: string, req: IncomingMessage): void {
    const now = this.#now();
    const last = this.#logged.get(status);
    if (last !== undefined && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    this.#logged.set(status, { at: now, suppressed: 0 });
    const fields = { status, error, remote: req.socket.remoteAddress, suppressed: last?.suppressed ?? 0 };
    if (status >= 500) this.#o.log.error(fields, "refused agent push");
    else this.#o.log.warn(fields, "refused agent push");
  }
}

/** Reads the body, inflating gzip as it arrives; stops at `max` bytes read or inflated. */
function readBody(req: IncomingMessage, gzip: boolean, length: number | undefined, max: number): Promise<Body> {
  return new Promise<Body>((resolve) => {
    let done = false;
    const finish = (body: Body): void => {
      if (done) return;
      done = true;
      resolve(body);
    };
    const tooLarge = (what: string): Body => ({ ok: false, status: 413, error: `${what} is over the limit of ${max} bytes` });
    const chunks: Buffer[] = [];
    let size = 0;

    // Small gzip bodies (the usual push: one to a few samples) are inflated in one call
    // once read; larger ones, or of unknown length, through a stream as they arrive.
    const stream = gzip && (length === undefined || length > INFLATE_AT_ONCE_BYTES) ? createGunzip() : undefined;
    if (stream !== undefined) {
      const inflated: Buffer[] = [];
      let inflatedSize = 0;
      stream.on("data", (chunk: Buffer) => {
        inflatedSize += chunk.length;
        if (inflatedSize > max) {
          stream.destroy();
          finish(tooLarge("the inflated body"));
        } else inflated.push(chunk);
      });
      stream.on("error", (error) => finish({ ok: false, status: 400, error: `body is not valid gzip: ${error.message}` }));
      stream.on("end", () => finish({ ok: true, data: Buffer.concat(inflated, inflatedSize) }));
    }

    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) return finish(tooLarge("the body"));
      if (stream !== undefined) stream.write(chunk);
      else chunks.push(chunk);
    });
    req.on("end", () => {
      if (done) return;
      if (stream !== undefined) return void stream.end();
      const raw = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size);
      if (!gzip) return finish({ ok: true, data: raw });
      try {
        finish({ ok: true, data: gunzipSync(raw, { maxOutputLength: max }) });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") finish(tooLarge("the inflated body"));
        else finish({ ok: false, status: 400, error: `body is not valid gzip: ${(error as Error).message}` });
      }
    });
    req.on("error", (error) => finish({ ok: false, status: 400, error: `could not read the body: ${error.message}` }));
    // The client went away before the end (no "error" on every Node version): settle anyway.
    req.on("close", () => {
      if (!req.complete) finish({ ok: false, status: 400, error: "the client closed the connection before the end of the body" });
    });
  });
}

/**
 * The hand-written check first (fast-check.ts; folder reports through zod on their own),
 * zod on the whole push when that is unsure: zod decides, and words the error.
 */
function checkPush(json: unknown): { ok: true; push: AgentPush } | { ok: false; error: string } {
  if (isAgentPush(json)) return { ok: true, push: json };
  if (typeof json === "object" && json !== null && "folders" in json) {
    const { folders, ...rest } = json;
    if (isAgentPush(rest)) {
      const reports = FOLDERS.safeParse(folders);
      if (reports.success && reports.data !== undefined) return { ok: true, push: { ...rest, folders: reports.data } };
    }
  }
  const parsed = AgentPush.safeParse(json, { reportInput: true });
  return parsed.success ? { ok: true, push: parsed.data } : { ok: false, error: describeIssues(parsed.error.issues) };
}

const FOLDERS = AgentPush.shape.folders;

/** Bearer tokens compared in constant time; the expected token's digest is kept while the token does not change. */
class TokenCheck {
  #token: string | undefined;
  #digest: Buffer = Buffer.alloc(0);

  matches(header: string | undefined, token: string): boolean {
    if (header === undefined || header.length < 7 || header.slice(0, 7).toLowerCase() !== "bearer ") return false;
    if (this.#token !== token) {
      this.#token = token;
      this.#digest = sha256(token);
    }
    // Comparing digests makes the comparison constant-time in the length too.
    return timingSafeEqual(sha256(header.slice(7).trim()), this.#digest);
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function send(res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

const MAX_ISSUES = 3;

/** "samples.3.cores.0.total: expected a number ≤ 1; …", at most MAX_ISSUES of them. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const parts = issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = issue.path.map(String).join(".");
    return `${path === "" ? "(body)" : path}: ${expectation(issue)}`;
  });
  const more = issues.length - MAX_ISSUES;
  return more > 0 ? `${parts.join("; ")}; and ${more} more` : parts.join("; ");
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type": {
      const expected = issue.expected === "int" ? "an integer" : article(issue.expected);
      return issue.input === undefined ? `required: expected ${expected}` : `expected ${expected}, got ${typeName(issue.input)}`;
    }
    case "too_big":
    case "too_small": {
      const big = issue.code === "too_big";
      const bound = big ? issue.maximum : issue.minimum;
      const inclusive = issue.inclusive !== false;
      const sign = big ? (inclusive ? "≤" : "<") : inclusive ? "≥" : ">";
      if (issue.origin === "array") return `expected ${big ? "at most" : "at least"} ${String(bound)} items`;
      if (issue.origin === "string") return `expected ${big ? "at most" : "at least"} ${String(bound)} characters`;
      return `expected a number ${sign} ${String(bound)}`;
    }
    case "invalid_value":
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`;
    case "unrecognized_keys":
      return `unknown field${issue.keys.length === 1 ? "" : "s"} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    case "custom":
    case "invalid_element":
    case "invalid_format":
    case "invalid_key":
    case "invalid_union":
    case "not_multiple_of":
      return issue.message;
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return article(typeof value);
}
