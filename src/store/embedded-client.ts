/** The other side of embedded-server.ts: a live run's store, reached through its socket. */
import { request } from "node:http";
import type { Action, OpExecution } from "../api/opexecution.ts";
import type { EventRecord, KindName, ObjectOf, ObjectRef } from "./types.ts";

export class EmbeddedClient {
  readonly #socket: string;

  constructor(socketPath: string) {
    this.#socket = socketPath;
  }

  list<K extends KindName>(kind: K): Promise<ObjectOf<K>[]> {
    return this.#call("GET", `/v1/${kind}`) as Promise<ObjectOf<K>[]>;
  }

  async get<K extends KindName>(kind: K, namespace: string | undefined, name: string): Promise<ObjectOf<K> | undefined> {
    try {
      return (await this.#call("GET", `/v1/${kind}/${kind === "OpNode" ? "" : `${encodeURIComponent(namespace ?? "default")}/`}${encodeURIComponent(name)}`)) as ObjectOf<K>;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  }

  events(ref?: ObjectRef): Promise<EventRecord[]> {
    const query = ref === undefined ? "" : `?kind=${ref.kind}&namespace=${encodeURIComponent(ref.namespace ?? "")}&name=${encodeURIComponent(ref.name)}`;
    return this.#call("GET", `/v1/events${query}`) as Promise<EventRecord[]>;
  }

  summary(): Promise<unknown> {
    return this.#call("GET", "/v1/summary");
  }

  setAction(namespace: string, name: string, action: Action): Promise<OpExecution> {
    return this.#call("PUT", `/v1/OpExecution/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/action`, { action }) as Promise<OpExecution>;
  }

  #call(method: string, path: string, body?: unknown): Promise<unknown> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.#socket, path, method, headers: text === undefined ? {} : { "content-type": "application/json" }, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
          if ((res.statusCode ?? 500) >= 400) {
            reject(Object.assign(new Error((parsed as { error?: string } | null)?.error ?? `HTTP ${res.statusCode}`), { status: res.statusCode }));
          } else {
            resolve(parsed);
          }
        });
      });
      req.on("timeout", () => req.destroy(new Error("the odop run did not answer within 5 s")));
      req.on("error", reject);
      if (text !== undefined) req.write(text);
      req.end();
    });
  }
}
