// AgentPusher against a real HTTP server on 127.0.0.1 that speaks the push protocol
// (src/api/agent-push.ts). No timing assertions: every wait is "until it happened".
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { AgentPush, type AgentPushReply, type WatchRequest } from "../../src/api/agent-push.ts";
import type { NodeSample } from "../../src/api/sample.ts";
import { type AgentLog, AgentPusher, type PusherOptions } from "../../src/agent/pusher.ts";
import { SampleBuffer } from "../../src/agent/sample-buffer.ts";
import { until } from "./processes.ts";

function sample(i: number): NodeSample {
  return {
    version: "v1",
    node: "n1",
    time: 1_700_000_000_000 + i * 1000,
    intervalMs: 1000,
    cores: [{ id: 0, total: 0.5, main: 0.25, odop: 0.125 }],
    memory: { totalBytes: 1000, availableBytes: 500, mainBytes: 100, odopBytes: 10 },
    main: { processes: 1, cpu: 0.25 },
  };
}

interface Received {
  push: AgentPush;
  headers: IncomingMessage["headers"];
}

/** A controller: records valid pushes, answers what `respond` says (default 200 with nextSeq). */
class Controller {
  server: Server | undefined;
  port = 0;
  readonly pushes: Received[] = [];
  readonly statuses: number[] = [];
  watch: WatchRequest[] = [];
  respond: (push: AgentPush, headers: IncomingMessage["headers"]) => { status: number; body?: unknown } | undefined = () => undefined;

  /** Sequence numbers taken, in the order they arrived. */
  get seqs(): number[] {
    return this.pushes.flatMap((r) => r.push.samples.map((_, i) => r.push.seq + i));
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        let push: AgentPush;
        try {
          const raw = Buffer.concat(chunks);
          const text = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw).toString("utf8") : raw.toString("utf8");
          push = AgentPush.parse(JSON.parse(text));
        } catch (error) {
          res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: String(error) }));
          return;
        }
        const answer = this.respond(push, req.headers);
        const status = answer?.status ?? 200;
        this.statuses.push(status);
        if (status === 200) this.pushes.push({ push, headers: req.headers });
        const reply: AgentPushReply = { accepted: push.samples.length, nextSeq: push.seq + push.samples.length, watch: this.watch, serverTime: Date.now() };
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer?.body ?? reply));
      });
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function logger(): AgentLog & { lines: { level: string; msg: string; data: unknown }[] } {
  const lines: { level: string; msg: string; data: unknown }[] = [];
  const at = (level: string) => (data: unknown, msg?: string) => lines.push({ level, msg: msg ?? String(data), data });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const controllers: Controller[] = [];
const pushers: AgentPusher[] = [];
afterEach(async () => {
  for (const p of pushers.splice(0)) p.close();
  for (const c of controllers.splice(0)) await c.stop();
});

async function controller(port = 0): Promise<Controller> {
  const c = new Controller();
  controllers.push(c);
  await c.start(port);
  return c;
}

function pusher(port: number, options: Partial<PusherOptions> = {}): AgentPusher {
  const p = new AgentPusher({
    controller: `http://127.0.0.1:${port}`,
    token: () => "secret-token",
    node: "n1",
    version: "0.0.0-test",
    sampleIntervalMs: 1000,
    backoff: { initialMs: 10, maxMs: 50 },
    log: logger(),
    ...options,
  });
  pushers.push(p);
  return p;
}

/** A port nothing listens on (connection refused), for a controller started later. */
async function freePort(): Promise<number> {
  const c = new Controller();
  await c.start();
  const port = c.port;
  await c.stop();
  return port;
}

describe("AgentPusher", () => {
  it("sends every sample gzipped, with the token, in seq order", async () => {
    const c = await controller();
    const p = pusher(c.port);
    for (let i = 0; i < 5; i++) p.push(sample(i));
    await until(() => p.stats().sent === 5, "5 samples taken");
    expect(c.seqs).toEqual([0, 1, 2, 3, 4]);
    for (const { push, headers } of c.pushes) {
      expect(headers["content-encoding"]).toBe("gzip");
      expect(headers["authorization"]).toBe("Bearer secret-token");
      expect(push.agent.instance).toBe(p.instance);
      expect(push.node).toBe("n1");
    }
    expect(c.pushes.flatMap((r) => r.push.samples.map((s) => s.time))).toEqual([0, 1, 2, 3, 4].map((i) => sample(i).time));
    expect(p.stats()).toMatchObject({ sent: 5, dropped: 0, rejected: 0, buffered: 0, failures: 0 });
  });

  it("batches by count and by time", async () => {
    const c = await controller();
    const p = pusher(c.port, { batchSamples: 3, batchMs: 50 });
    for (let i = 0; i < 3; i++) p.push(sample(i));
    await until(() => p.stats().sent === 3, "a batch of 3");
    expect(c.pushes.map((r) => r.push.samples.length)).toEqual([3]);
    p.push(sample(3));
    await until(() => p.stats().sent === 4, "the lone sample, after batchMs");
    expect(c.pushes.map((r) => r.push.samples.length)).toEqual([3, 1]);
  });

  it("keeps samples while the controller is down and replays them in order, none twice", async () => {
    const port = await freePort();
    const log = logger();
    const p = pusher(port, { log });
    for (let i = 0; i < 4; i++) p.push(sample(i));
    await until(() => p.stats().failures >= 2, "two refused connections");
    p.push(sample(4));
    const c = await controller(port);
    await until(() => p.stats().sent === 5, "the buffered samples taken");
    expect(c.seqs).toEqual([0, 1, 2, 3, 4]);
    expect(p.stats()).toMatchObject({ buffered: 0, dropped: 0 });
    // One warning for the outage however many retries, one line on recovery.
    expect(log.lines.filter((l) => l.msg.startsWith("cannot push samples"))).toHaveLength(1);
    expect(log.lines.filter((l) => l.msg === "the controller takes samples again")).toHaveLength(1);
  });

  it("drops the oldest samples when the buffer is full, and says so once", async () => {
    const port = await freePort();
    const log = logger();
    const p = pusher(port, { bufferSamples: 3, log });
    p.push(sample(0));
    await until(() => p.stats().failures >= 1, "a refused connection");
    for (let i = 1; i < 6; i++) p.push(sample(i));
    expect(p.stats()).toMatchObject({ buffered: 3, dropped: 3 });
    expect(log.lines.filter((l) => l.msg.startsWith("agent buffer full"))).toHaveLength(1);
    const c = await controller(port);
    await until(() => p.stats().sent === 3, "the 3 newest taken");
    expect(c.seqs).toEqual([3, 4, 5]);
  });

  it("splits a batch the controller finds too large, and drops a single sample that still is", async () => {
    const c = await controller();
    c.respond = (push) => (push.samples.length > 2 || push.samples.some((s) => s.time === sample(6).time) ? { status: 413, body: { error: "too large" } } : undefined);
    const p = pusher(c.port, { batchSamples: 5 });
    for (let i = 0; i < 5; i++) p.push(sample(i));
    await until(() => p.stats().sent === 5, "all 5 taken in smaller pushes");
    expect(c.seqs).toEqual([0, 1, 2, 3, 4]);
    expect(c.pushes.every((r) => r.push.samples.length <= 2)).toBe(true);
    expect(c.statuses.filter((s) => s === 413).length).toBeGreaterThanOrEqual(2);

    const q = pusher(c.port);
    q.push(sample(6));
    await until(() => q.stats().rejected === 1, "the oversized sample dropped");
    q.push(sample(7));
    await until(() => q.stats().sent === 1, "the next one taken");
  });

  it("drops a batch the controller refuses as invalid (400) and logs its error once", async () => {
    const c = await controller();
    const log = logger();
    c.respond = (push) => (push.samples.some((s) => s.time < sample(2).time) ? { status: 400, body: { error: "samples.0.cores: bad" } } : undefined);
    const p = pusher(c.port, { log });
    p.push(sample(0));
    await until(() => p.stats().rejected === 1, "the first refused");
    p.push(sample(1));
    await until(() => p.stats().rejected === 2, "the second refused");
    p.push(sample(2));
    await until(() => p.stats().sent === 1, "the third taken");
    expect(c.seqs).toEqual([2]);
    const errors = log.lines.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]?.data).toMatchObject({ status: 400, error: "samples.0.cores: bad" });
  });

  it("keeps samples on 401 and sends them once the token is rotated", async () => {
    const c = await controller();
    let token = "old";
    c.respond = (_, headers) => (headers["authorization"] === "Bearer new" ? undefined : { status: 401, body: { error: "wrong token" } });
    const log = logger();
    const p = pusher(c.port, { token: () => token, log });
    p.push(sample(0));
    p.push(sample(1));
    await until(() => p.stats().failures >= 2, "refused twice");
    expect(p.stats()).toMatchObject({ buffered: 2, sent: 0, rejected: 0 });
    expect(JSON.stringify(log.lines)).toContain("is the agent token right?");
    expect(JSON.stringify(log.lines)).not.toContain("old");
    token = "new";
    await until(() => p.stats().sent === 2, "taken with the new token");
    expect(c.seqs).toEqual([0, 1]);
  });

  it("drops what the reply's nextSeq says was taken already", async () => {
    const port = await freePort();
    const p = pusher(port);
    for (let i = 0; i < 4; i++) p.push(sample(i));
    await until(() => p.stats().failures >= 1, "a refused connection");
    const c = await controller(port);
    // The controller took seq 0..2 before (say, a reply that was lost): it says 3 is next.
    c.respond = (push) => ({
      status: 200,
      body: { accepted: 0, nextSeq: Math.max(3, push.seq + push.samples.length), watch: [], serverTime: Date.now() },
    });
    await until(() => p.stats().buffered === 0, "the buffer emptied");
    p.push(sample(4));
    await until(() => p.stats().buffered === 0 && c.statuses.length >= 2, "the next sample sent");
    expect(c.statuses.every((s) => s === 200)).toBe(true);
  });

  it("hands the reply (its watch list) to onReply, and sends folder reports", async () => {
    const c = await controller();
    c.watch = [{ folder: "/data/out", pattern: "*.h5" }];
    const replies: AgentPushReply[] = [];
    const p = pusher(c.port, { onReply: (r) => replies.push(r) });
    p.reportFolders([{ folder: "/data/out", pattern: "*.h5", files: [] }], true);
    await until(() => replies.length === 1, "a reply");
    expect(replies[0]?.watch).toEqual(c.watch);
    expect(c.pushes[0]?.push.samples).toEqual([]);
    expect(c.pushes[0]?.push.folders).toEqual([{ folder: "/data/out", pattern: "*.h5", files: [] }]);
    p.push(sample(0));
    await until(() => replies.length === 2, "a second reply");
    expect(c.pushes[1]?.push.folders).toBeUndefined(); // reports go once, until new ones come
  });

  it("flush gives up at its deadline when the controller is down", async () => {
    const p = pusher(await freePort());
    p.push(sample(0));
    expect(await p.flush(100)).toBe(false);
    expect(p.stats().buffered).toBe(1);
    const c = await controller();
    const q = pusher(c.port, { batchSamples: 100, batchMs: 60_000 });
    for (let i = 0; i < 3; i++) q.push(sample(i));
    expect(await q.flush(5000)).toBe(true);
    expect(c.seqs).toEqual([0, 1, 2]);
  });
});

describe("SampleBuffer", () => {
  it("numbers samples, drops the oldest when full, and removes below a seq", () => {
    const buffer = new SampleBuffer(3);
    expect(buffer.firstSeq).toBeUndefined();
    expect([0, 1, 2].map((i) => buffer.add(sample(i)))).toEqual([false, false, false]);
    expect(buffer.add(sample(3))).toBe(true);
    expect(buffer.oldest(10).map((e) => [e.seq, e.sample.time])).toEqual([1, 2, 3].map((i) => [i, sample(i).time]));
    expect(buffer.oldest(2).map((e) => e.seq)).toEqual([1, 2]);
    expect(buffer.removeBelow(3)).toBe(2);
    expect(buffer.removeBelow(3)).toBe(0);
    expect(buffer).toMatchObject({ length: 1, firstSeq: 3, nextSeq: 4 });
    for (let i = 4; i < 10; i++) buffer.add(sample(i));
    expect(buffer.oldest(3).map((e) => e.seq)).toEqual([7, 8, 9]);
    expect(buffer.removeBelow(100)).toBe(3);
    expect(buffer.oldest(3)).toEqual([]);
  });
});
