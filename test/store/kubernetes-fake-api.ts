/**
 * A scripted stand-in for the API server on 127.0.0.1, speaking its wire format: JSON
 * bodies, Status objects on errors, and watches as chunked JSON lines. Tests queue the
 * answers to lists and watches in the order the client will ask; every request is
 * recorded. It checks the client's requests and the store's reactions, never the API
 * server's semantics (the contract suite does that against a real cluster).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { afterEach } from "vitest";
import { eventually } from "../support/engine.ts";

export type Recorded = { method: string; path: string; query: URLSearchParams; body: unknown; contentType: string | undefined };
export type Route = (res: ServerResponse, request: Recorded) => void;

export class FakeApi {
  readonly requests: Recorded[] = [];
  readonly #lists: Route[] = [];
  readonly #watches: Route[] = [];
  readonly #routes: { method: string; path: RegExp; route: Route }[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #open = new Set<ServerResponse>();
  readonly #server: Server;
  #port = 0;

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    this.#port = address.port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  kubeConfig(): KubeConfig {
    return kubeConfigFor(this.url);
  }

  /** Answers the next list (GET without watch=true). */
  onList(route: Route): this {
    this.#lists.push(route);
    return this;
  }

  /** Answers the next watch; a watch with nothing queued is held open, silent. */
  onWatch(route: Route): this {
    this.#watches.push(route);
    return this;
  }

  /** Answers every request of this method whose path matches. */
  on(method: string, path: RegExp, route: Route): this {
    this.#routes.push({ method, path, route });
    return this;
  }

  /** Watches still open on the server side. */
  get openWatches(): number {
    return this.#open.size;
  }

  of(method: string, path?: RegExp): Recorded[] {
    return this.requests.filter((r) => r.method === method && (path === undefined || path.test(r.path)));
  }

  watchRequests(): Recorded[] {
    return this.requests.filter((r) => r.method === "GET" && r.query.get("watch") === "true");
  }

  listRequests(): Recorded[] {
    return this.requests.filter((r) => r.method === "GET" && r.query.get("watch") !== "true" && !/\/[^/]+s\/[^/]+$/.test(r.path.replace(/\/namespaces\/[^/]+/, "")));
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", this.url);
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = undefined;
      if (text !== "") {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      const recorded: Recorded = { method: req.method ?? "GET", path: url.pathname, query: url.searchParams, body, contentType: req.headers["content-type"] };
      this.requests.push(recorded);
      if (recorded.method === "GET" && url.searchParams.get("watch") === "true") {
        this.#open.add(res);
        res.on("close", () => this.#open.delete(res));
        const route = this.#watches.shift();
        if (route === undefined) {
          res.writeHead(200, { "content-type": "application/json" });
          res.flushHeaders();
          return;
        }
        route(res, recorded);
        return;
      }
      const match = this.#routes.find((r) => r.method === recorded.method && r.path.test(recorded.path));
      if (match !== undefined) return match.route(res, recorded);
      if (recorded.method === "GET") {
        const route = this.#lists.shift();
        if (route !== undefined) return route(res, recorded);
      }
      sendStatus(res, 404, "NotFound", `no route for ${recorded.method} ${recorded.path}`);
    });
  }
}

export function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server, skipTLSVerify: true }],
    users: [{ name: "fake", token: "t" }],
    contexts: [{ name: "fake", cluster: "fake", user: "fake" }],
    currentContext: "fake",
  });
  return kc;
}

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

export function status(code: number, reason: string, message: string, causes?: { field: string; message: string; reason?: string }[]) {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code, ...(causes === undefined ? {} : { details: { causes } }) };
}

export function sendStatus(res: ServerResponse, code: number, reason: string, message: string, causes?: { field: string; message: string }[]): void {
  sendJson(res, code, status(code, reason, message, causes));
}

/** A list answer, as the API server writes it (items without kind and apiVersion). */
export function listOf(items: unknown[], resourceVersion: string): Route {
  return (res) => sendJson(res, 200, { apiVersion: "odop.io/v1alpha1", kind: "OpTaskList", metadata: { resourceVersion }, items });
}

export type WireEvent = { type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR"; object: unknown };

/**
 * A watch that writes these events as JSON lines, then: "hold" keeps it open, "end"
 * closes it cleanly, "drop" ends the connection without finishing the response (lost mid-stream).
 */
export function streamOf(events: WireEvent[], then: "hold" | "end" | "drop"): Route {
  return (res) => {
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    for (const event of events) res.write(`${JSON.stringify(event)}\n`);
    if (then === "end") res.end();
    // Half-closing the socket after the lines, with the chunked body unterminated: the
    // client reads every line, then sees the connection end mid-response.
    else if (then === "drop") res.socket?.end();
    else res.flushHeaders();
  };
}

export function task(namespace: string, name: string, resourceVersion: string, suspend = false) {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name, namespace, uid: `uid-${name}`, resourceVersion, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: { trigger: { manual: {} }, run: { command: ["true"] }, policy: { priority: 0, onContention: "pause", concurrency: 1 }, suspend },
  };
}

export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await eventually(check, what, timeoutMs);
}

/** For a test file: returns `closing(x)`, which closes x after the test, the latest first. */
export function closeAfterEach(): <T extends { close(): Promise<void> }>(resource: T) => T {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const resource of open.splice(0).reverse()) await resource.close();
  });
  return (resource) => {
    open.push(resource);
    return resource;
  };
}
