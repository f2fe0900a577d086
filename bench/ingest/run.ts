/**
 * Ingest bench (DESIGN.md §6): the controller should take ≥ 20,000 node samples per
 * second on one core. Run with `npm run bench:ingest [-- options]` (about 25 s).
 *
 * This process runs the real ingest server (startIngestServer → AgentNodeSource.take,
 * one NodeWindow per node) on 127.0.0.1, pinned to one CPU with taskset when there is
 * one; a child process, pinned to the other CPUs, plays N agents: each push is one
 * node's next sample(s), gzipped JSON with a bearer token, sent over a few kept-alive
 * connections, one request in flight on each. Prints samples/s taken, request latency
 * p50/p95/p99 (as the client sees it), and the server process's CPU time per sample
 * (user + system, V8's helper threads included).
 *
 * The client must not eat the server's core, so it does no JSON or gzip work per push:
 * it writes raw HTTP/1.1 over net sockets, and each body is a concatenation of gzip
 * members — a tiny stored (uncompressed) member with what changes (sentAt, seq, time)
 * and members compressed once at start-up with what does not (the cores, memory and
 * main application of one of a few load patterns per node). A gzip stream of several
 * members inflates to their concatenation (RFC 1952), so the server does the same work
 * as for an agent's single-member body.
 *
 * Options: --nodes 5000 --cores 128 --samples-per-push 1 --connections 16
 *          --seconds 15 --warmup 5 --digits 17 (digits of the core shares: the agent
 *          sends full doubles today) --clients 1 (load processes)
 */
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { availableParallelism, loadavg } from "node:os";
import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { crc32, gzipSync } from "node:zlib";
import pino from "pino";
import { AgentNodeSource } from "../../src/controller/ingest/agent-nodes.ts";
import { startIngestServer } from "../../src/controller/ingest/server.ts";
import { rng } from "../../test/support/rng.ts";

const TOKEN = "bench-token-0123456789";
const GiB = 2 ** 30;

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "5000" },
    cores: { type: "string", default: "128" },
    "samples-per-push": { type: "string", default: "1" },
    connections: { type: "string", default: "16" },
    seconds: { type: "string", default: "15" },
    warmup: { type: "string", default: "5" },
    digits: { type: "string", default: "17" },
    clients: { type: "string", default: "1" },
    load: { type: "boolean", default: false },
    url: { type: "string", default: "" },
    part: { type: "string", default: "0" },
  },
});
const opt = {
  nodes: Number(args.nodes),
  cores: Number(args.cores),
  perPush: Number(args["samples-per-push"]),
  connections: Number(args.connections),
  seconds: Number(args.seconds),
  warmup: Number(args.warmup),
  digits: Number(args.digits),
  clients: Number(args.clients),
};

type Stats = { requests: number; errors: number; statuses: Record<string, number>; latenciesUs: number[]; cpuSeconds: number };
type ToClient = { type: "go" } | { type: "measure" } | { type: "stop" };
type ToServer = { type: "ready"; bodyBytes: number; inflatedBytes: number } | ({ type: "stats" } & Stats);

if (args.load) await loadGenerator();
else await server();

// ---------------------------------------------------------------------------------------
// The controller side.

async function server(): Promise<void> {
  // Once pinned, this process sees one CPU: the machine's count comes from the environment.
  const cpus = Number(process.env["ODOP_BENCH_CPUS"] ?? availableParallelism());
  const taskset = cpus >= 2 && hasTaskset();
  if (taskset && process.env["ODOP_BENCH_PINNED"] === undefined) {
    // Re-run pinned to CPU 0: V8's GC helper threads and libuv's pool then share it too.
    const child = spawn("taskset", ["-c", "0", process.execPath, ...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env: { ...process.env, ODOP_BENCH_PINNED: "1", ODOP_BENCH_CPUS: String(cpus) } });
    child.on("exit", (code) => process.exit(code ?? 1));
    return;
  }
  const loadBefore = loadavg();
  let taken = 0;
  const source = new AgentNodeSource({ watchFor: () => [] });
  const ingest = await startIngestServer({
    host: "127.0.0.1",
    port: 0,
    token: () => TOKEN,
    log: pino({ level: "warn" }),
    onPush: (push, receivedAt) => {
      const reply = source.take(push, receivedAt);
      taken += reply.accepted;
      return reply;
    },
  });

  console.log(`ingest bench: Node ${process.version}, ${cpus} CPUs; server ${taskset ? "pinned to CPU 0" : "not pinned (no taskset)"}, load ${taskset ? `on CPUs 1-${cpus - 1}` : "unpinned"}`);
  console.log(`${opt.nodes} agents × ${opt.cores} cores, ${opt.perPush} sample(s) per push, gzip, ${opt.clients} load process(es) × ${opt.connections} kept-alive connections, 1 request in flight each; ${opt.warmup} s warm-up, ${opt.seconds} s measured`);

  const clients: ChildProcess[] = [];
  const ready: Promise<ToServer>[] = [];
  for (let part = 0; part < opt.clients; part++) {
    const argv = ["--load", "--url", ingest.url, "--part", String(part), ...process.argv.slice(2).filter((a) => a !== "--load")];
    const child = taskset
      ? fork(import.meta.filename, argv, { execPath: "taskset", execArgv: ["-c", `1-${cpus - 1}`, process.execPath, ...process.execArgv] })
      : fork(import.meta.filename, argv);
    clients.push(child);
    ready.push(nextMessage(child));
  }
  const [first] = await Promise.all(ready);
  if (first?.type === "ready") console.log(`a push: ${first.bodyBytes} bytes gzipped, ${first.inflatedBytes} bytes of JSON`);

  for (const c of clients) c.send({ type: "go" } satisfies ToClient);
  await sleep(opt.warmup * 1000);
  const stats = clients.map((c) => nextMessage(c));
  for (const c of clients) c.send({ type: "measure" } satisfies ToClient);
  const cpu0 = process.cpuUsage();
  const taken0 = taken;
  const t0 = performance.now();
  const elu0 = performance.eventLoopUtilization();
  await sleep(opt.seconds * 1000);
  for (const c of clients) c.send({ type: "stop" } satisfies ToClient);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const samples = taken - taken0;
  const all = (await Promise.all(stats)).filter((s): s is { type: "stats" } & Stats => s.type === "stats");
  for (const c of clients) c.disconnect();
  await ingest.close();

  const latencies = all.flatMap((s) => s.latenciesUs).sort((a, b) => a - b);
  const requests = all.reduce((n, s) => n + s.requests, 0);
  const errors = all.reduce((n, s) => n + s.errors, 0);
  const statuses: Record<string, number> = {};
  for (const s of all) for (const [k, v] of Object.entries(s.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const q = (p: number) => ((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0) / 1000).toFixed(2);
  const mem = process.memoryUsage();
  console.log(`taken: ${Math.round(samples / elapsed).toLocaleString("en")} samples/s (${samples.toLocaleString("en")} in ${elapsed.toFixed(1)} s; ${Math.round(requests / elapsed).toLocaleString("en")} requests/s; statuses ${JSON.stringify(statuses)}${errors > 0 ? `; ${errors} connection errors` : ""})`);
  console.log(`request latency: p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms`);
  console.log(`server CPU: ${((cpuSeconds / samples) * 1e6).toFixed(1)} µs per sample (${cpuSeconds.toFixed(2)} s user+system in ${elapsed.toFixed(1)} s: ${((cpuSeconds / elapsed) * 100).toFixed(0)} % of one core); event loop busy ${(elu.utilization * 100).toFixed(0)} %`);
  const clientCpu = all.reduce((n, s) => n + s.cpuSeconds, 0);
  console.log(`load generator CPU: ${((clientCpu / elapsed) * 100).toFixed(0)} % of one core; load average before the run ${loadBefore.map((l) => l.toFixed(2)).join(", ")}`);
  console.log(`nodes held: ${source.size.toLocaleString("en")}; server RSS ${(mem.rss / 2 ** 20).toFixed(0)} MB, heap ${(mem.heapUsed / 2 ** 20).toFixed(0)} MB`);
  console.log(`goal: ≥ 20,000 samples/s on one core: ${samples / elapsed >= 20_000 ? "met" : "not met"}`);
}

function nextMessage(child: ChildProcess): Promise<ToServer> {
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m as ToServer));
    child.once("exit", (code) => reject(new Error(`load generator exited with ${code}`)));
  });
}

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------
// The agents' side (child process).


/** A gzip member holding `data` uncompressed (one stored deflate block): no compression work per push. */
function storedMember(data: Buffer): Buffer {
  if (data.length > 0xffff) throw new Error("stored member too large");
  const out = Buffer.alloc(10 + 5 + data.length + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], 0);
  out[10] = 1; // final block, stored
  out.writeUInt16LE(data.length, 11);
  out.writeUInt16LE(~data.length & 0xffff, 13);
  data.copy(out, 15);
  out.writeUInt32LE(crc32(data), 15 + data.length);
  out.writeUInt32LE(data.length >>> 0, 19 + data.length);
  return out;
}

type Agent = { node: string; seq: number; time: number; patterns: Buffer[]; inflated: number[] };

async function loadGenerator(): Promise<void> {
  const part = Number(args.part);
  const url = new URL(args.url);
  const r = rng(42 + part);
  const PATTERNS = 4;
  const share = (x: number) => (opt.digits >= 17 ? x : Number(x.toFixed(opt.digits)));
  const agents: Agent[] = [];
  const nodes = Math.ceil(opt.nodes / opt.clients);
  const start = Date.now() - 3600_000;
  for (let i = 0; i < nodes; i++) {
    const node = `node-${String(part * nodes + i).padStart(5, "0")}`;
    const used = Array.from({ length: opt.cores }, () => r() < 0.5);
    const patterns: Buffer[] = [];
    const inflated: number[] = [];
    for (let p = 0; p < PATTERNS; p++) {
      const cores = used.map((u, id) => {
        const main = share(u ? 0.6 + 0.4 * r() : 0.05 * r());
        return { id, total: share(Math.min(1, main + 0.01 * r())), main, odop: 0 };
      });
      const mainCpu = cores.reduce((a, c) => a + c.main, 0);
      const text = `${JSON.stringify(cores).slice(1, -1)}],"memory":${JSON.stringify({ totalBytes: 512 * GiB, availableBytes: Math.floor((200 + 100 * r()) * GiB), mainBytes: Math.floor(250 * GiB * r()), odopBytes: 0 })},"main":${JSON.stringify({ processes: 64, cpu: mainCpu })}}`;
      patterns.push(gzipSync(text));
      inflated.push(Buffer.byteLength(text));
    }
    agents.push({ node, seq: 0, time: start, patterns, inflated });
  }
  const instance = `bench-instance-${part}`;
  let bodyBytes = 0;
  let inflatedBytes = 0;

  /** The next push of `a`: its request bytes. */
  const requestOf = (a: Agent): Buffer => {
    const parts: Buffer[] = [];
    let inflatedSize = 0;
    // Sample times follow the real clock (the server measures the agent's clock offset
    // from sentAt), at least 1 ms apart; the last one is sent at once.
    const last = Math.max(a.time + opt.perPush, Date.now());
    const step = Math.floor((last - a.time) / opt.perPush);
    const head = `{"version":"v1","node":"${a.node}","agent":{"version":"bench","instance":"${instance}","sampleIntervalMs":1000},"sentAt":${last},"seq":${a.seq},"samples":[`;
    for (let s = 0; s < opt.perPush; s++) {
      a.time = s === opt.perPush - 1 ? last : a.time + step;
      const p = (a.seq + s) % a.patterns.length;
      const lead = `${s === 0 ? head : ","}{"version":"v1","node":"${a.node}","time":${a.time},"intervalMs":1000,"cores":[`;
      parts.push(storedMember(Buffer.from(lead)), a.patterns[p]!);
      inflatedSize += Buffer.byteLength(lead) + a.inflated[p]!;
    }
    parts.push(storedMember(Buffer.from("]}")));
    a.seq += opt.perPush;
    const body = Buffer.concat(parts);
    bodyBytes = body.length;
    inflatedBytes = inflatedSize + 2;
    const headers = `POST /v1/samples HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(headers), body]);
  };
  requestOf({ ...agents[0]!, patterns: agents[0]!.patterns }); // sizes for the report
  process.send?.({ type: "ready", bodyBytes, inflatedBytes } satisfies ToServer);

  const stats: Stats = { requests: 0, errors: 0, statuses: {}, latenciesUs: [], cpuSeconds: 0 };
  let cpuAtMeasure = process.cpuUsage();
  let measuring = false;
  let stopped = false;
  let next = 0;
  const sockets: Socket[] = [];

  const run = (socket: Socket): void => {
    let sentAt = 0;
    let buffered = "";
    const send = (): void => {
      if (stopped) return;
      const a = agents[next]!;
      next = (next + 1) % agents.length;
      sentAt = performance.now();
      socket.write(requestOf(a));
    };
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      // Answers are small: head + a JSON body with Content-Length.
      buffered += chunk.toString("latin1");
      for (;;) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end === -1) return;
        const length = Number(/content-length: *(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const status = buffered.slice(9, 12);
        buffered = buffered.slice(end + 4 + length);
        if (measuring) {
          stats.requests++;
          stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
          stats.latenciesUs.push(Math.round((performance.now() - sentAt) * 1000));
        }
        send();
      }
    });
    socket.on("error", () => stats.errors++);
    send();
  };

  process.on("message", (m: ToClient) => {
    if (m.type === "go") {
      for (let c = 0; c < opt.connections; c++) {
        const socket = connect(Number(url.port), url.hostname, () => run(socket));
        sockets.push(socket);
      }
    } else if (m.type === "measure") {
      measuring = true;
      cpuAtMeasure = process.cpuUsage();
    } else {
      stopped = true;
      measuring = false;
      const cpu = process.cpuUsage(cpuAtMeasure);
      stats.cpuSeconds = (cpu.user + cpu.system) / 1e6;
      for (const s of sockets) s.destroy();
      process.send?.({ type: "stats", ...stats } satisfies ToServer);
    }
  });
  await new Promise<void>((resolve) => process.once("disconnect", resolve));
}
