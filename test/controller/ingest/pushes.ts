/** Builders of agent pushes, and a small HTTP client that also reads answers given before the body was sent. */
import { request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { gzipSync } from "node:zlib";
import type { AgentPush } from "../../../src/api/agent-push.ts";
import type { NodeSample } from "../../../src/api/sample.ts";

export const GiB = 2 ** 30;
export const TOKEN = "s3cret-agent-token";

/** A sample of `node` at `time` with the main application's use of each core (0..1) as given. */
export function sampleOf(node: string, time: number, main: readonly number[], extra: Partial<NodeSample> = {}): NodeSample {
  return {
    version: "v1",
    node,
    time,
    intervalMs: 1000,
    cores: main.map((m, id) => ({ id, total: m, main: m, odop: 0 })),
    memory: { totalBytes: 64 * GiB, availableBytes: 40 * GiB, mainBytes: 20 * GiB, odopBytes: 0 },
    main: { processes: 2, cpu: main.reduce((a, b) => a + b, 0) },
    ...extra,
  };
}

export type PushOptions = { node?: string; instance?: string; seq: number; sentAt: number; samples: NodeSample[]; folders?: AgentPush["folders"] };

export function pushOf(o: PushOptions): AgentPush {
  return {
    version: "v1",
    node: o.node ?? "n1",
    agent: { version: "0.1.0", instance: o.instance ?? "instance-a", sampleIntervalMs: 1000 },
    sentAt: o.sentAt,
    seq: o.seq,
    samples: o.samples,
    ...(o.folders === undefined ? {} : { folders: o.folders }),
  };
}

export type Answer = { status: number; body: any; headers: Record<string, string | string[] | undefined> };

export type PostOptions = {
  token?: string | null;
  gzip?: boolean;
  contentType?: string | null;
  method?: string;
  path?: string;
  headers?: OutgoingHttpHeaders;
  ca?: string;
};

/**
 * Sends `body` (an object: JSON, gzipped by default; a Buffer: as is) and resolves with
 * the answer. An answer that arrives while the body is still being written counts (the
 * server answers 413 and 401 early); a write error after it is ignored.
 */
export function post(url: string, body: unknown, o: PostOptions = {}): Promise<Answer> {
  const gzip = o.gzip ?? true;
  let data: Buffer;
  if (Buffer.isBuffer(body)) data = body;
  else data = Buffer.from(JSON.stringify(body));
  if (gzip && !Buffer.isBuffer(body)) data = gzipSync(data);
  const headers: OutgoingHttpHeaders = { "content-length": data.length };
  if (o.contentType !== null) headers["content-type"] = o.contentType ?? "application/json";
  if (gzip) headers["content-encoding"] = "gzip";
  if (o.token !== null) headers["authorization"] = `Bearer ${o.token ?? TOKEN}`;
  Object.assign(headers, o.headers);
  for (const [k, v] of Object.entries(headers)) if (v === undefined) delete headers[k];
  const target = new URL(o.path ?? "/v1/samples", url);
  const request = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<Answer>((resolve, reject) => {
    let answered = false;
    const req = request(target, { method: o.method ?? "POST", headers, agent: false, ...(o.ca === undefined ? {} : { ca: o.ca }) }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // plain text (healthz)
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
      });
      res.on("error", reject);
    });
    req.on("error", (error) => {
      if (!answered) reject(error);
    });
    req.end(data);
  });
}
