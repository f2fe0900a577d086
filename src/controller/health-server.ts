/**
 * /healthz, /readyz and /metrics on one port. Liveness says the process's loops still
 * turn (a stuck event loop fails it); readiness says the caches are synced, on a
 * standby replica too (it is ready to take over).
 */
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

export type HealthSources = {
  /** False when the controller's loops have stopped turning. */
  live: () => boolean;
  /** False until the caches are synced. */
  ready: () => boolean;
  registry: Registry;
};

export async function serveHealth(host: string, port: number, sources: HealthSources): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://odop").pathname;
    const reply = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET") return reply(405, "method not allowed\n");
    if (path === "/healthz") return sources.live() ? reply(200, "ok\n") : reply(503, "loops stalled\n");
    if (path === "/readyz") return sources.ready() ? reply(200, "ok\n") : reply(503, "caches not synced\n");
    if (path === "/metrics") {
      sources.registry.metrics().then(
        (text) => reply(200, text, sources.registry.contentType),
        (error: unknown) => reply(500, `${(error as Error).message}\n`),
      );
      return;
    }
    reply(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
