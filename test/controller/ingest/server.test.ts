/**
 * The ingest endpoint over real HTTP on 127.0.0.1, with the AgentNodeSource it feeds:
 * what is taken, what is refused and why, replays, a controller restart, clock skew,
 * staleness and harvestable cores. Time is a FakeClock (the server's receivedAt and the
 * views' now): nothing sleeps.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { WatchRequest } from "../../../src/api/agent-push.ts";
import { FakeClock } from "../../../src/controller/clock.ts";
import { rfc3339 } from "../../../src/controller/conditions.ts";
import { AgentNodeSource } from "../../../src/controller/ingest/agent-nodes.ts";
import { startIngestServer, type IngestServer } from "../../../src/controller/ingest/server.ts";
import { post, pushOf, sampleOf, TOKEN } from "./pushes.ts";

const servers: IngestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

const WATCH: WatchRequest[] = [{ folder: "/data/out", pattern: "*.h5" }];

type Setup = { clock?: FakeClock; token?: () => string | undefined; maxBodyBytes?: number; tls?: { cert: string; key: string } };

async function start(setup: Setup = {}) {
  const clock = setup.clock ?? new FakeClock();
  const logs: string[] = [];
  const log = pino(
    { level: "debug" },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString("utf8"));
        done();
      },
    }),
  );
  const source = new AgentNodeSource({ watchFor: (node) => (node === "n1" ? WATCH : []), now: () => clock.now() });
  const server = await startIngestServer({
    host: "127.0.0.1",
    port: 0,
    token: setup.token ?? (() => TOKEN),
    ...(setup.maxBodyBytes === undefined ? {} : { maxBodyBytes: setup.maxBodyBytes }),
    ...(setup.tls === undefined ? {} : { tls: setup.tls }),
    onPush: (push, receivedAt) => source.take(push, receivedAt),
    log,
    now: () => clock.now(),
  });
  servers.push(server);
  return { clock, source, server, logs };
}

/** The agent's pushes of one sample each, starting at seq 0, one a second by `agentClock`. */
function pushes(count: number, agentClock: () => number, main: readonly number[] = [0, 0, 0, 0], instance = "instance-a") {
  return Array.from({ length: count }, (_, seq) => pushOf({ seq, instance, sentAt: agentClock() + seq * 1000, samples: [sampleOf("n1", agentClock() + seq * 1000, main)] }));
}

describe("ingest server", () => {
  it("takes a valid gzip push: the node's window gets its samples, the reply says what was taken", async () => {
    const { clock, source, server } = await start();
    const t = clock.now();
    const push = pushOf({ seq: 7, sentAt: t, samples: [sampleOf("n1", t - 1000, [0.9, 0]), sampleOf("n1", t, [0.8, 0])] });
    const answer = await post(server.url, push);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ accepted: 2, nextSeq: 9, watch: WATCH, serverTime: t });
    expect(source.window("n1")?.samples().map((s) => s.time)).toEqual([t - 1000, t]);
    expect(source.views(t).map((v) => ({ name: v.name, stale: v.stale, cores: v.cores.length }))).toEqual([{ name: "n1", stale: false, cores: 2 }]);
  });

  it("takes a plain JSON push too, and answers /healthz, 404 and 405", async () => {
    const { clock, server } = await start();
    const t = clock.now();
    expect((await post(server.url, pushOf({ seq: 0, sentAt: t, samples: [sampleOf("n1", t, [0])] }), { gzip: false, contentType: "application/json; charset=utf-8" })).status).toBe(200);
    const health = await fetch(`${server.url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, "ok\n"]);
    expect((await post(server.url, {}, { path: "/v1/other" })).status).toBe(404);
    const get = await fetch(`${server.url}/v1/samples`);
    expect([get.status, get.headers.get("allow")]).toEqual([405, "POST"]);
  });

  it("refuses a wrong or missing token with 401, takes nothing, and never logs the token", async () => {
    const { clock, source, server, logs } = await start();
    const push = pushOf({ seq: 0, sentAt: clock.now(), samples: [sampleOf("n1", clock.now(), [0])] });
    const wrong = await post(server.url, push, { token: "not-the-token" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toMatch(/token/);
    expect((await post(server.url, push, { token: null })).status).toBe(401);
    expect((await post(server.url, push, { headers: { authorization: TOKEN } })).status).toBe(401); // not "Bearer …"
    expect(source.size).toBe(0);
    expect(logs.join("")).toMatch(/refused agent push/);
    expect(logs.join("")).not.toContain(TOKEN);
    expect(logs.join("")).not.toContain("not-the-token");
  });

  it("reads the token on every request (a rotated Secret applies at once) and refuses all without one", async () => {
    let token: string | undefined = "old";
    const { clock, server } = await start({ token: () => token });
    const push = (seq: number) => pushOf({ seq, sentAt: clock.now(), samples: [] });
    expect((await post(server.url, push(0), { token: "old" })).status).toBe(200);
    token = "new";
    expect((await post(server.url, push(1), { token: "old" })).status).toBe(401);
    expect((await post(server.url, push(1), { token: "new" })).status).toBe(200);
    token = undefined;
    const none = await post(server.url, push(2), { token: "new" });
    expect([none.status, none.body.error]).toEqual([401, "the controller has no agent token configured"]);
  });

  it("answers 413 to a body over the limit, plain or gzip that inflates past it, and takes nothing", async () => {
    const { clock, source, server } = await start({ maxBodyBytes: 64 * 1024 });
    const t = clock.now();
    // 600 samples of 4 cores: ~170 KB of JSON.
    const big = pushOf({ seq: 0, sentAt: t, samples: Array.from({ length: 600 }, (_, i) => sampleOf("n1", t - 600_000 + i * 1000, [0.1, 0.2, 0.3, 0.4])) });
    const plain = await post(server.url, big, { gzip: false });
    expect(plain.status).toBe(413);
    expect(plain.body.error).toMatch(/over the limit of 65536 bytes/);
    // Without Content-Length (chunked): refused as the bytes arrive.
    const chunked = await post(server.url, Buffer.from(JSON.stringify(big)), { gzip: false, headers: { "content-length": undefined, "transfer-encoding": "chunked" } });
    expect(chunked.status).toBe(413);
    // A gzip bomb: 1 MiB of spaces in a ~1 KB body.
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"version":"v1",'), Buffer.alloc(2 ** 20, " "), Buffer.from("}")]));
    expect(bomb.length).toBeLessThan(4096);
    const inflated = await post(server.url, bomb);
    expect(inflated.status).toBe(413);
    expect(inflated.body.error).toMatch(/inflated body is over the limit/);
    // The same bomb without Content-Length goes through the streaming inflater.
    const streamed = await post(server.url, bomb, { headers: { "content-length": undefined, "transfer-encoding": "chunked" } });
    expect([streamed.status, streamed.body.error]).toEqual([413, inflated.body.error]);
    // The limit is on bytes: the same push with fewer samples passes.
    expect((await post(server.url, { ...big, samples: big.samples.slice(0, 10) }, { gzip: false })).status).toBe(200);
    expect(source.window("n1")?.samples()).toHaveLength(10);
  });

  it("answers 400 naming the field and what was expected", async () => {
    const { clock, source, server } = await start();
    const t = clock.now();
    const samples = [0, 1, 2, 3].map((i) => sampleOf("n1", t - 3000 + i * 1000, [0.1, 0.2]));
    samples[3]!.cores[0]!.total = 1.5;
    const bad = await post(server.url, pushOf({ seq: 0, sentAt: t, samples }));
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("samples.3.cores.0.total: expected a number ≤ 1");

    const cases: [unknown, string][] = [
      [{ ...pushOf({ seq: 0, sentAt: t, samples: [] }), version: "v2" }, 'version: expected "v1"'],
      [{ ...pushOf({ seq: 0, sentAt: t, samples: [] }), seq: 1.5 }, "seq: expected an integer, got a number"],
      [{ ...pushOf({ seq: 0, sentAt: t, samples: [] }), extra: 1 }, '(body): unknown field "extra"'],
      [(({ sentAt: _, ...rest }) => rest)(pushOf({ seq: 0, sentAt: t, samples: [] })), "sentAt: required: expected a number"],
      [{ ...pushOf({ seq: 0, sentAt: t, samples: [] }), samples: "none" }, "samples: expected an array, got a string"],
    ];
    for (const [body, error] of cases) expect((await post(server.url, body)).body.error).toBe(error);
    const notJson = await post(server.url, Buffer.from("{nope"), { gzip: false });
    expect([notJson.status, notJson.body.error]).toEqual([400, expect.stringMatching(/^body is not JSON/)]);
    const notGzip = await post(server.url, Buffer.from("{}"), { gzip: true });
    expect([notGzip.status, notGzip.body.error]).toEqual([400, expect.stringMatching(/^body is not valid gzip/)]);
    expect(source.size).toBe(0);
  });

  it("takes folder reports with the samples, and names a bad one's field", async () => {
    const { clock, source, server } = await start();
    const t = clock.now();
    const folders = [{ folder: "/data/out", pattern: "*.h5", files: [{ path: "/data/out/a.h5", size: 10, mtimeMs: t - 500, openForWriting: false }] }];
    expect((await post(server.url, pushOf({ seq: 0, sentAt: t, samples: [sampleOf("n1", t, [0])], folders }))).status).toBe(200);
    expect([...source.folderReports()].map((r) => r.report)).toEqual(folders);
    const bad = [{ ...folders[0]!, files: [{ ...folders[0]!.files[0]!, size: -1 }] }];
    const answer = await post(server.url, pushOf({ seq: 1, sentAt: t, samples: [], folders: bad }));
    expect([answer.status, answer.body.error]).toEqual([400, "folders.0.files.0.size: expected a number ≥ 0"]);
  });

  it("answers 400 to a sample of another node, 415 to a body that is not JSON or an unknown encoding", async () => {
    const { clock, source, server } = await start();
    const t = clock.now();
    const other = await post(server.url, pushOf({ seq: 0, sentAt: t, samples: [sampleOf("n1", t - 1000, [0]), sampleOf("n2", t, [0])] }));
    expect([other.status, other.body.error]).toEqual([400, 'samples.1.node: expected "n1" (the push\'s node), got "n2"']);
    const push = pushOf({ seq: 0, sentAt: t, samples: [sampleOf("n1", t, [0])] });
    expect((await post(server.url, push, { contentType: "text/plain" })).status).toBe(415);
    expect((await post(server.url, push, { contentType: null })).status).toBe(415);
    expect((await post(server.url, push, { headers: { "content-encoding": "br" } })).status).toBe(415);
    expect(source.size).toBe(0);
  });

  it("takes a push sent twice (its reply was lost) once", async () => {
    const { clock, source, server } = await start();
    const push = pushOf({ seq: 0, sentAt: clock.now(), samples: [sampleOf("n1", clock.now() - 1000, [0]), sampleOf("n1", clock.now(), [0])] });
    expect((await post(server.url, push)).body).toMatchObject({ accepted: 2, nextSeq: 2 });
    clock.advance(500);
    expect((await post(server.url, { ...push, sentAt: clock.now() })).body).toMatchObject({ accepted: 0, nextSeq: 2 });
    expect(source.window("n1")?.samples()).toHaveLength(2);
    // A push that overlaps what was taken: only its new samples count.
    clock.advance(500);
    const next = pushOf({ seq: 1, sentAt: clock.now(), samples: [sampleOf("n1", push.sentAt, [0]), sampleOf("n1", clock.now(), [0])] });
    expect((await post(server.url, next)).body).toMatchObject({ accepted: 1, nextSeq: 3 });
    // A restarted agent (new instance) starts its seq again.
    clock.advance(1000);
    const restarted = pushOf({ seq: 0, instance: "instance-b", sentAt: clock.now(), samples: [sampleOf("n1", clock.now(), [0])] });
    expect((await post(server.url, restarted)).body).toMatchObject({ accepted: 1, nextSeq: 1 });
    expect(source.window("n1")?.samples()).toHaveLength(4);
  });

  it("after a controller restart, takes the agent's replay of its buffered pushes once, in order", async () => {
    const clock = new FakeClock();
    const before = await start({ clock });
    const t0 = clock.now();
    const all = pushes(6, () => t0);
    clock.advance(1000);
    for (const p of all.slice(0, 2)) expect((await post(before.server.url, { ...p, sentAt: clock.now() })).status).toBe(200);
    await before.server.close();
    servers.splice(servers.indexOf(before.server), 1);

    // The new controller knows nothing; the agent did not get the replies of pushes 1..5 and sends them all again.
    clock.advance(5000);
    const after = await start({ clock });
    const accepted: number[] = [];
    for (const p of all.slice(1)) {
      clock.advance(10);
      const answer = await post(after.server.url, { ...p, sentAt: clock.now() });
      accepted.push(answer.body.accepted);
    }
    expect(accepted).toEqual([1, 1, 1, 1, 1]);
    const times = after.source.window("n1")!.samples().map((s) => s.time);
    expect(times).toHaveLength(5);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    // And once only: the same replay again takes nothing.
    for (const p of all.slice(1)) expect((await post(after.server.url, { ...p, sentAt: clock.now() })).body.accepted).toBe(0);
  });

  it("puts the samples of an agent whose clock is an hour ahead on the controller's clock", async () => {
    const { clock, source, server } = await start();
    for (let seq = 0; seq < 4; seq++) {
      if (seq > 0) clock.advance(1000);
      const agentNow = clock.now() + 3600_000;
      // Sampled 200 ms before it was sent, by the agent's clock.
      expect((await post(server.url, pushOf({ seq, sentAt: agentNow, samples: [sampleOf("n1", agentNow - 200, [0, 0])] }))).body.accepted).toBe(1);
    }
    const window = source.window("n1")!;
    expect(window.latestTime).toBe(clock.now() - 200);
    expect(window.samples().map((s) => s.time)).toEqual([3000, 2000, 1000, 0].map((ago) => clock.now() - ago - 200));
    expect(source.views(clock.now())[0]?.stale).toBe(false);
    const [node] = source.opNodes(rfc3339(clock.now()));
    expect(node?.status.conditions?.[0]).toMatchObject({ type: "Fresh", status: "True", reason: "Fresh" });
    expect(node?.status.lastHeartbeatTime).toBe(rfc3339(clock.now()));
  });

  it("shows a node silent past staleAfterMs as stale, with Fresh=False/AgentSilent", async () => {
    const { clock, source, server } = await start();
    for (let seq = 0; seq < 5; seq++) {
      if (seq > 0) clock.advance(1000);
      await post(server.url, pushOf({ seq, sentAt: clock.now(), samples: [sampleOf("n1", clock.now(), [0, 0, 0, 0])] }));
    }
    const lastPush = clock.now();
    expect(source.views(clock.now())[0]?.cores.filter((c) => c.harvestable)).toHaveLength(4);
    clock.advance(10_000); // 10 s after the last push: still fresh
    expect(source.views(clock.now())[0]?.stale).toBe(false);
    clock.advance(1);
    const [view] = source.views(clock.now());
    expect(view?.stale).toBe(true);
    expect(view?.cores.some((c) => c.harvestable)).toBe(false);
    clock.advance(999); // opNodes takes RFC 3339 time, to the second
    const [node] = source.opNodes(rfc3339(clock.now()));
    expect(node?.status.conditions?.[0]).toEqual({
      type: "Fresh",
      status: "False",
      reason: "AgentSilent",
      message: `agent silent since ${rfc3339(lastPush)}`,
      lastTransitionTime: rfc3339(lastPush + 10_000),
    });
    expect(node?.status.harvestable).toMatchObject({ cores: 0, cpuset: "" });
  });

  it("follows a synthetic load: the harvestable cpuset loses core 1 while it is busy and gets it back after the hold", async () => {
    const { clock, source, server } = await start();
    let seq = 0;
    const cpuset = () => source.opNodes(rfc3339(clock.now()))[0]?.status.harvestable?.cpuset;
    const second = async (main: number[]) => {
      await post(server.url, pushOf({ seq: seq++, sentAt: clock.now(), samples: [sampleOf("n1", clock.now(), main)] }));
      clock.advance(1000);
    };
    const busy = [0, 0.9, 0, 0];
    const idle = [0, 0, 0, 0];
    for (let i = 0; i < 5; i++) await second(busy);
    expect(cpuset()).toBe("0,2-3"); // the idle cores were held for 3 s (holdMs) and released
    // Core 1 goes idle: its smoothed use falls under 0.15 after three samples, then it is held 3 s.
    const seen: (string | undefined)[] = [];
    for (let i = 0; i < 8; i++) {
      await second(idle);
      seen.push(cpuset());
    }
    expect(seen.slice(0, 3)).toEqual(["0,2-3", "0,2-3", "0,2-3"]);
    expect(seen.at(-1)).toBe("0-3");
    // One busy sample takes it back at once (reclaimOn: raw).
    await second(busy);
    expect(cpuset()).toBe("0,2-3");
  });

  it("reports capacity, the main application and the agent in the OpNode status, rounded", async () => {
    const { clock, source, server } = await start();
    const sample = sampleOf("n1", clock.now(), [0.5, 0.9, 0.2, 0], {
      memory: { totalBytes: 64 * 2 ** 30 + 123, availableBytes: 40 * 2 ** 30 + 5, mainBytes: 20 * 2 ** 30 + 100 * 2 ** 20, odopBytes: 0 },
      main: { processes: 3, cpu: 1.6 },
      gpus: [
        { id: 0, utilization: 0, memoryUsedBytes: 0, memoryTotalBytes: 80 * 2 ** 30 },
        { id: 1, utilization: 0.9, memoryUsedBytes: 70 * 2 ** 30, memoryTotalBytes: 80 * 2 ** 30 },
      ],
    });
    await post(server.url, pushOf({ seq: 0, sentAt: clock.now(), samples: [sample] }));
    const [node] = source.opNodes(rfc3339(clock.now()));
    expect(node?.name).toBe("n1");
    expect(node?.status).toMatchObject({
      source: "agent",
      capacity: { cores: 4, memory: "65536Mi", gpus: 2 },
      mainApplication: { cores: 2, memory: "20480Mi", processes: 3 },
      harvestable: { cores: 0, cpuset: "", memory: "39936Mi", gpus: 1 },
      agent: { version: "0.1.0", sampleIntervalSeconds: 1 },
    });
  });
});

describe.skipIf(!hasOpenssl())("ingest server over HTTPS", () => {
  it("serves the same endpoint with the given certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "odop-ingest-tls-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
      const tls = { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
      const { clock, source, server } = await start({ tls });
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const answer = await post(server.url, pushOf({ seq: 0, sentAt: clock.now(), samples: [sampleOf("n1", clock.now(), [0])] }), { ca: tls.cert });
      expect(answer.status).toBe(200);
      expect(source.size).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    console.warn("ingest: no openssl on this machine, the HTTPS test is skipped");
    return false;
  }
}
