/**
 * The agent's freezer API for the Kubernetes backend, exactly as its client
 * (src/backends/kubernetes/agent-client.ts) speaks it:
 *
 *   POST /v1/freeze   {"pod": "<pod uid>", "container": "<name>"}
 *   POST /v1/thaw     {"pod": "<pod uid>", "container": "<name>", "cpuset": "0-3"}
 *   Authorization: Bearer <token>, Content-Type: application/json
 *
 *   200 {"state": "frozen" | "thawed"}   done (also when it already was)
 *   400 {"error"}  the body is not such a request (the error names the field)
 *   401 {"error"}  no or wrong token
 *   404 {"error"}  the pod has no cgroup on this node, or no such running container of odop
 *   405, 413       not a POST; body over 4 KiB
 *   409 {"error"}  two containers of the pod claim the name (see pod-cgroup.ts)
 *   500 {"error"}  writing the cgroup failed; 504: not frozen/thawed within the bound
 *
 * Freezing writes 1 to the container's cgroup v2 `cgroup.freeze` and waits until
 * `cgroup.events` says `frozen 1` (thawing: 0). On thaw, `cpuset` (odop's new cores) is
 * written to `cpuset.cpus` first where the cpuset controller is enabled on that cgroup and
 * the kubelet's static CPU manager does not own the container's cpuset; otherwise, or when
 * the write fails, the container is thawed on its old cores and the log says why (the
 * reply is still `thawed`: the cores are a preference, the thaw is the request). Requests are
 * handled one at a time. cgroup v1 freezers are not supported (a hybrid host's pods are
 * found through its v2 mount when the kubelet uses the systemd driver).
 */
import { timingSafeEqual } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { z } from "zod";
import { cgroupMounts } from "./cgroup.ts";
import {
  type CgroupView,
  LookupError,
  cpuManagerOwns,
  findContainerDirectory,
  hasCpusetController,
  procView,
  setFrozen,
} from "./pod-cgroup.ts";
import type { AgentLog } from "./pusher.ts";

const FreezeRequest = z.strictObject({
  pod: z.string().regex(/^[0-9A-Fa-f-]{1,64}$/, "a pod uid such as 0f3c3b52-5a55-4a36-9d8f-2bd1a7d4a2a1"),
  container: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "a container name (a DNS label)"),
  cpuset: z
    .string()
    .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, "a cpuset list such as 0-3,8")
    .max(4096)
    .optional(),
});

const MAX_BODY = 4096;

export interface FreezerServerOptions {
  host: string;
  port: number;
  /** The bearer token callers must present, asked on every request (a rotated Secret file applies). */
  token: () => string;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: string; key: string };
  /** cgroup v2 hierarchies to search; default: the mounted ones. */
  cgroupRoots?: readonly string[];
  view?: CgroupView;
  /** The kubelet's CPU manager state file; default /var/lib/kubelet/cpu_manager_state. */
  cpuManagerState?: string;
  /** Longest wait for cgroup.events to agree; default 5000 ms. */
  freezeTimeoutMs?: number;
  log: AgentLog;
}

export interface FreezerServer {
  /** Where it listens (the port the system gave when asked for 0). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function startFreezerServer(options: FreezerServerOptions): Promise<FreezerServer> {
  const roots = options.cgroupRoots ?? cgroupMounts().filter((m) => m.version === 2).map((m) => m.path);
  const view = options.view ?? procView;
  const statePath = options.cpuManagerState ?? "/var/lib/kubelet/cpu_manager_state";
  const timeoutMs = options.freezeTimeoutMs ?? 5000;
  const log = options.log;
  let queue: Promise<unknown> = Promise.resolve();

  async function act(action: "freeze" | "thaw", request: z.infer<typeof FreezeRequest>): Promise<"frozen" | "thawed"> {
    const { pod, container, cpuset } = request;
    if (roots.length === 0) throw new HttpError(404, "no cgroup v2 hierarchy is mounted on this node: the freezer needs cgroup v2");
    let dir: string;
    try {
      dir = findContainerDirectory(roots, pod, container, view);
    } catch (error) {
      if (error instanceof LookupError) throw new HttpError(error.status, error.message);
      throw error;
    }
    const where = { pod, container, cgroup: dir };
    if (action === "thaw" && cpuset !== undefined) {
      if (cpuManagerOwns(statePath, pod, container)) log.warn({ ...where, cpuset }, "the kubelet's static CPU manager owns this container's cpuset: thawing on its cores");
      else if (!hasCpusetController(dir)) log.warn({ ...where, cpuset }, "no cpuset controller on this container's cgroup: thawing on its cores");
      else {
        try {
          writeFileSync(join(dir, "cpuset.cpus"), cpuset);
        } catch (error) {
          log.warn({ ...where, cpuset, err: error }, "could not move the container to its new cores: thawing on its old ones");
        }
      }
    }
    try {
      await setFrozen(dir, action === "freeze", timeoutMs);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new HttpError(message.includes(" after ") ? 504 : 500, `${action} ${container} of pod ${pod}: ${message}`);
    }
    log.info({ ...where, ...(cpuset === undefined ? {} : { cpuset }) }, action === "freeze" ? "container frozen" : "container thawed");
    return action === "freeze" ? "frozen" : "thawed";
  }

  async function handle(req: IncomingMessage): Promise<{ state: "frozen" | "thawed" }> {
    const path = new URL(req.url ?? "/", "http://agent").pathname;
    const action = path === "/v1/freeze" ? "freeze" : path === "/v1/thaw" ? "thaw" : undefined;
    if (action === undefined) throw new HttpError(404, `no such endpoint ${path}: POST /v1/freeze or /v1/thaw`);
    if (req.method !== "POST") throw new HttpError(405, `${req.method ?? ""} ${path}: use POST`);
    if (!tokenMatches(req.headers.authorization, options.token())) throw new HttpError(401, "missing or wrong bearer token");
    const text = await readBody(req);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new HttpError(400, "the body is not JSON");
    }
    const request = FreezeRequest.safeParse(json);
    if (!request.success) {
      const issue = request.error.issues[0];
      throw new HttpError(400, `${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`);
    }
    // One at a time: a freeze and a thaw of the same container must not interleave.
    const run = queue.then(() => act(action, request.data));
    queue = run.catch(() => undefined);
    return { state: await run };
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req).then(
      (reply) => send(res, 200, reply),
      (error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        const message = error instanceof Error ? error.message : String(error);
        if (status >= 500) log.error({ status, error: message }, "freezer request failed");
        else log.warn({ status, error: message }, "freezer request refused");
        send(res, status, { error: message });
      },
    );
  };
  const server: Server = options.tls === undefined ? createServer(listener) : createTlsServer(options.tls, listener);
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  log.info({ host: bound.address, port: bound.port, tls: options.tls !== undefined, cgroupRoots: roots }, "freezer API listening");
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Compares the presented bearer token with `expected` in constant time. */
export function tokenMatches(header: string | undefined, expected: string): boolean {
  const presented = /^Bearer (.+)$/i.exec(header ?? "")?.[1];
  if (presented === undefined || expected === "") return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(req: IncomingMessage): Promise<string> {
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY) throw new HttpError(413, `the body is over ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_BODY) throw new HttpError(413, `the body is over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
