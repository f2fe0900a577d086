// Shared fixtures of the staging tests: scratch folders and real HTTP servers on 127.0.0.1.
import { afterEach, expect } from "vitest";
import { StagingError } from "../../src/staging/errors.ts";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

/** HTTP options that keep retries quick; no test asserts on timing. */
export const FAST = { retries: 2, backoffMs: 5, maxBackoffMs: 20, timeoutMs: 10_000 } as const;

const scratch: string[] = [];

/** A fresh folder, removed by cleanupScratch. */
export async function scratchDir(prefix = "odop-staging-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

export async function cleanupScratch(): Promise<void> {
  for (const dir of scratch.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** Every path under `dir`, hidden ones included, relative and sorted; folders end in '/'. */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => relative(dir, join(e.parentPath, e.name)) + (e.isDirectory() ? "/" : "")).sort();
}

/** The StagingError `promise` rejects with; fails the test when it resolves or rejects otherwise. */
export async function failure(promise: Promise<unknown>): Promise<StagingError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StagingError);
  return error as StagingError;
}

export type Received = {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
};

export type TestServer = {
  readonly base: string;
  readonly requests: Received[];
  close(): Promise<void>;
};

/**
 * A real HTTP server on an ephemeral loopback port. The handler sees each request with
 * its body already read; `requests` records them in order.
 */
export async function startServer(handler: (req: Received, res: ServerResponse, n: number) => void): Promise<TestServer> {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const received = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(received);
      handler(received, res, requests.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * For a test file: returns `server(handler)`, which starts a server closed after each
 * test, and removes the scratch folders after each test too.
 */
export function serversPerTest(): (handler: Parameters<typeof startServer>[0]) => Promise<TestServer> {
  let servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers) await s.close();
    servers = [];
    await cleanupScratch();
  });
  return async (handler) => {
    const s = await startServer(handler);
    servers.push(s);
    return s;
  };
}
