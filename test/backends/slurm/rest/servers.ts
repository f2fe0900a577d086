/**
 * Stand-ins for slurmrestd in the tests: real node:http servers on 127.0.0.1 or on a
 * unix socket in a temp dir, recording each request and the sockets open at once.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import type { SlurmApiVersion } from "../../../../src/backends/slurm/rest/types.ts";

export type Seen = { method: string; url: string; headers: IncomingHttpHeaders; body: string };
export type Handler = (req: Seen, res: ServerResponse) => void;

export type FakeSlurmrestd = {
  /** "http://127.0.0.1:port" or "unix:/tmp/…/slurmrestd.socket". */
  readonly endpoint: string;
  readonly seen: Seen[];
  /** The most sockets that were open at the same time. */
  readonly maxOpen: () => number;
  close(): Promise<void>;
};

const open: FakeSlurmrestd[] = [];
const dirs: string[] = [];

/** Closes the servers a test started and removes its temp dirs. */
export function closeServersAfterEach(): void {
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
}

/** A fresh temp dir, removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "odop-slurm-"));
  dirs.push(dir);
  return dir;
}

export async function startSlurmrestd(handler: Handler, options: { unix?: boolean } = {}): Promise<FakeSlurmrestd> {
  const seen: Seen[] = [];
  let current = 0;
  let most = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      seen.push(s);
      handler(s, res);
    });
  });
  server.on("connection", (socket) => {
    current++;
    most = Math.max(most, current);
    socket.on("close", () => current--);
  });
  let endpoint: string;
  if (options.unix === true) {
    const path = join(tempDir(), "slurmrestd.socket");
    await new Promise<void>((resolve) => server.listen(path, resolve));
    endpoint = `unix:${path}`;
  } else {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const fake: FakeSlurmrestd = {
    endpoint,
    seen,
    maxOpen: () => most,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.push(fake);
  return fake;
}

export function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain" : "application/json" });
  res.end(text);
}

export const FIXTURES_DIR = join(import.meta.dirname, "fixtures");

export function fixture(version: SlurmApiVersion, file: string): unknown {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, version, file), "utf8")) as unknown;
}

/** Fast retries for tests; no test asserts on timing. */
export const FAST_RETRY = { retries: 3, baseDelayMs: 1, maxDelayMs: 2 } as const;
