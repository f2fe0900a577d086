// `odop agent` assembled: options, and a real agent pushing to a real HTTP controller on
// 127.0.0.1 that asks it to watch a folder.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type Agent, parseAgentOptions, startAgent } from "../../src/agent/agent.ts";
import type { AgentLog } from "../../src/agent/pusher.ts";
import { AgentPush, type WatchRequest } from "../../src/api/agent-push.ts";
import { until } from "./processes.ts";

const scratch = mkdtempSync(join(tmpdir(), "odop-agent-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const quiet = { debug() {}, info() {}, warn() {}, error() {} } as unknown as AgentLog;

describe("agent options", () => {
  it("names each bad option and what it takes", () => {
    const result = parseAgentOptions({ intervalMs: 50, freezer: { listen: "9443" }, main: { command: "(", slurmJob: 0 } });
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    const about = (option: string) => problems.find((p) => p.startsWith(`${option}: `));
    expect(about("controller")).toMatch(/URL/);
    expect(about("intervalMs")).toMatch(/at least 100 ms/);
    expect(about("freezer.listen")).toMatch(/host:port/);
    expect(about("main.command")).toMatch(/regular expression/);
    expect(about("main.slurmJob")).toMatch(/job id/);
    expect(parseAgentOptions({ controller: "ftp://x" }).ok).toBe(false);
    const noToken = parseAgentOptions({ controller: "http://c:8080" });
    expect(noToken.ok ? [] : noToken.problems).toEqual([expect.stringMatching(/^token: set exactly one of token or tokenFile/)]);
  });

  it("fills in defaults", () => {
    const result = parseAgentOptions({ controller: "https://odop:8443", tokenFile: "/var/run/secrets/odop/token", freezer: { listen: ":9443" } });
    expect(result).toMatchObject({
      ok: true,
      options: { intervalMs: 1000, bufferSamples: 600, batchSamples: 1, gpu: "auto", freezer: { listen: { host: "0.0.0.0", port: 9443 } } },
    });
  });

  it("fails fast on a token file it cannot read", async () => {
    await expect(startAgent({ controller: "http://127.0.0.1:1", tokenFile: join(scratch, "missing") }, quiet)).rejects.toThrow(/^tokenFile: cannot read/);
  });
});

describe("the agent", () => {
  let server: Server | undefined;
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  it("pushes samples, watches the folders the controller names, and flushes on stop", async () => {
    const folder = mkdtempSync(join(scratch, "trigger-"));
    const tokenFile = join(scratch, "token");
    writeFileSync(tokenFile, "tok-1\n");
    const pushes: AgentPush[] = [];
    const tokens = new Set<string>();
    const watch: WatchRequest[] = [{ folder, pattern: "*.h5" }];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const push = AgentPush.parse(JSON.parse(gunzipSync(Buffer.concat(chunks)).toString("utf8")));
        pushes.push(push);
        tokens.add(req.headers.authorization ?? "");
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ accepted: push.samples.length, nextSeq: push.seq + push.samples.length, watch, serverTime: Date.now() }));
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", () => resolve()));
    const port = (server.address() as AddressInfo).port;

    agent = await startAgent({ controller: `http://127.0.0.1:${port}`, tokenFile, node: "node-a", intervalMs: 200, gpu: "off" }, quiet);
    await until(() => pushes.filter((p) => p.samples.length > 0).length >= 2, "two samples");
    const samples = pushes.flatMap((p) => p.samples);
    expect(samples[0]?.node).toBe("node-a");
    expect(samples.at(-1)?.io).toBeDefined();
    expect(samples.every((s) => s.gpus === undefined)).toBe(true);

    // The reply named a folder: its report comes, then a new file in it, open, then closed.
    await until(() => pushes.some((p) => p.folders?.[0]?.folder === folder), "the folder report");
    const fd = openSync(join(folder, "a.h5"), "w");
    writeSync(fd, "data");
    const report = () => pushes.at(-1)?.folders?.[0]?.files.find((f) => f.path === join(folder, "a.h5"));
    await until(() => report()?.openForWriting === true, "the open file reported");
    closeSync(fd);
    await until(() => report()?.openForWriting === false, "the closed file reported");

    // A rotated token file is read again.
    writeFileSync(tokenFile, "tok-2\n");
    await until(() => tokens.has("Bearer tok-2"), "the new token used");
    expect([...tokens]).toEqual(["Bearer tok-1", "Bearer tok-2"]);

    const stats = await agent.stop();
    agent = undefined;
    expect(stats.buffered).toBe(0);
    expect(stats.sent).toBe(pushes.reduce((n, p) => n + p.samples.length, 0));
    const seqs = pushes.flatMap((p) => p.samples.map((_, i) => p.seq + i));
    expect(seqs).toEqual(seqs.map((_, i) => i)); // in order, none twice, no gap
  });
});
