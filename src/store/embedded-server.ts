/**
 * The embedded store served on a unix socket in the run folder, so that `odop get`,
 * `describe`, `logs`, `pause`, `resume`, `stop` and `skip` in another terminal see and
 * steer the live run. Reads are open to whoever can reach the socket (its file mode is
 * 0600: the user who runs odop); the only write is spec.action of an execution.
 */
import { chmodSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { z } from "zod";
import { ACTIONS } from "../api/opexecution.ts";
import { NotFoundError } from "./errors.ts";
import type { KindName, Store } from "./types.ts";

const KINDS: readonly KindName[] = ["OpTask", "OpExecution", "OpNode"];
const ActionBody = z.strictObject({ action: z.enum(ACTIONS) });
const MAX_BODY = 4096;

export type ServerExtras = {
  /** A summary of the run for `odop get` headers (main application, node sample). */
  summary: () => unknown;
};

export async function serveStore(store: Store, socketPath: string, extras: ServerExtras): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer((req, res) => {
    handle(store, extras, req, res).catch((error: unknown) => send(res, 500, { error: (error as Error).message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  server.unref();
  return server;
}

async function handle(store: Store, extras: ServerExtras, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://odop");
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== "v1") return send(res, 404, { error: "not found" });
  if (req.method === "GET" && parts[1] === "summary") return send(res, 200, extras.summary());
  if (req.method === "GET" && parts[1] === "events") {
    const kind = url.searchParams.get("kind");
    const name = url.searchParams.get("name");
    const ref = kind !== null && name !== null && isKind(kind) ? { kind, namespace: url.searchParams.get("namespace") ?? undefined, name } : undefined;
    return send(res, 200, await store.events(ref));
  }
  const kind = parts[1];
  if (kind === undefined || !isKind(kind)) return send(res, 404, { error: `unknown kind ${kind ?? ""}` });
  if (req.method === "GET" && parts.length === 2) return send(res, 200, await store.list(kind, url.searchParams.get("namespace") ?? undefined));
  const [namespace, name] = kind === "OpNode" ? [undefined, parts[2]] : [parts[2], parts[3]];
  if (name === undefined) return send(res, 404, { error: "name missing" });
  if (req.method === "GET") {
    const object = await store.get(kind, namespace, name);
    return object === undefined ? send(res, 404, { error: `${kind} ${name} not found` }) : send(res, 200, object);
  }
  if (req.method === "PUT" && kind === "OpExecution" && parts[4] === "action") {
    const body = ActionBody.safeParse(await readJson(req));
    if (!body.success) return send(res, 400, { error: `body: ${body.error.issues.map((i) => i.message).join("; ")}` });
    for (let attempt = 0; ; attempt += 1) {
      const current = await store.get("OpExecution", namespace, name);
      if (current === undefined) throw new NotFoundError(`OpExecution ${namespace ?? ""}/${name} not found`);
      try {
        return send(res, 200, await store.update({ ...current, spec: { ...current.spec, action: body.data.action } }));
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  }
  return send(res, 405, { error: "method not allowed" });
}

function isKind(kind: string): kind is KindName {
  return (KINDS as readonly string[]).includes(kind);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error("request body too large");
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
