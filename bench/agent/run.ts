/**
 * bench/agent: what `odop agent` costs a node at 1 s sampling, side by side with
 * Prometheus' node_exporter (Debian `prometheus-node-exporter`) scraped every second,
 * on the same machine in the same minute (DESIGN §6 goal for the agent: ≤ 0.5 % of one
 * core and ≤ 60 MB resident).
 *
 * Starts a small controller stand-in on 127.0.0.1 that takes the agent's pushes (it
 * inflates and validates each one with the push schema, and answers as the controller
 * does), `odop agent` pushing to it every second, and node_exporter, which this process
 * scrapes every second. After a warm-up it reads each process's CPU time (utime + stime
 * from /proc/<pid>/stat) at the start and the end of the measured span, and its resident
 * memory (VmRSS) every second.
 *
 *   npm run bench:agent [-- --seconds 60 --warmup 5]
 *
 * Needs prometheus-node-exporter (installed with apt-get when missing and run as root).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { AgentPush, type AgentPushReply } from "../../src/api/agent-push.ts";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "60" }, warmup: { type: "string", default: "5" } } });
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const ROOT = join(import.meta.dirname, "../..");
const EXPORTER = "/usr/bin/prometheus-node-exporter";
const TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);

function ensureExporter(): void {
  try {
    readFileSync(EXPORTER);
    return;
  } catch {
    // not installed
  }
  say("bench/agent: installing prometheus-node-exporter (apt-get)");
  execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", "prometheus-node-exporter"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

ensureExporter();
const dir = mkdtempSync(join(tmpdir(), "odop-bench-agent-"));
const children: ChildProcess[] = [];
const cleanup = () => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
};
process.on("exit", cleanup);

// The controller stand-in: takes pushes as the ingest does (gzip, schema), answers with nextSeq.
let pushes = 0;
let samples = 0;
let rejected = 0;
const token = "bench-agent-token";
writeFileSync(join(dir, "token"), token);
const controller = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks);
    const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
    const parsed = AgentPush.safeParse(JSON.parse(body.toString("utf8")));
    if (req.headers.authorization !== `Bearer ${token}` || !parsed.success) {
      rejected++;
      res.writeHead(400).end(JSON.stringify({ error: parsed.success ? "token" : parsed.error.message }));
      return;
    }
    pushes++;
    samples += parsed.data.samples.length;
    const reply: AgentPushReply = { accepted: parsed.data.samples.length, nextSeq: parsed.data.seq + parsed.data.samples.length, watch: [], serverTime: Date.now() };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(reply));
  });
});
await new Promise<void>((r) => controller.listen(0, "127.0.0.1", r));
const controllerUrl = `http://127.0.0.1:${(controller.address() as AddressInfo).port}`;

const agent = spawn(process.execPath, [join(ROOT, "src/cli/odop.ts"), "agent", "--controller", controllerUrl, "--token-file", join(dir, "token"), "--interval", "1s"], {
  env: { ...process.env, ODOP_PATH: join(dir, "home") },
  stdio: ["ignore", "ignore", "pipe"],
});
children.push(agent);
let agentErr = "";
agent.stderr?.on("data", (d: Buffer) => (agentErr += d.toString()));

const exporterPort = 20_000 + Math.floor(Math.random() * 20_000);
const exporter = spawn(EXPORTER, [`--web.listen-address=127.0.0.1:${exporterPort}`], { stdio: "ignore" });
children.push(exporter);

// Scrape node_exporter every second, as a Prometheus with scrape_interval 1s would.
let scrapes = 0;
let scrapeBytes = 0;
const scraper = setInterval(() => {
  fetch(`http://127.0.0.1:${exporterPort}/metrics`).then(
    async (r) => {
      scrapeBytes += (await r.text()).length;
      scrapes++;
    },
    () => {},
  );
}, 1000);

await wait(warmup * 1000);
if (agent.exitCode !== null || exporter.exitCode !== null) {
  throw new Error(`a process ended during warm-up: agent ${String(agent.exitCode)} ${agentErr.trim()}, node_exporter ${String(exporter.exitCode)}`);
}
const procs = { "odop agent": agent.pid ?? 0, node_exporter: exporter.pid ?? 0 };
const start = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuSeconds(pid)]));
const rss: Record<string, number[]> = { "odop agent": [], node_exporter: [] };
const pushesBefore = pushes;
const scrapesBefore = scrapes;
const t0 = Date.now();
for (let i = 0; i < seconds; i++) {
  await wait(1000);
  for (const [k, pid] of Object.entries(procs)) rss[k]?.push(rssBytes(pid));
}
const span = (Date.now() - t0) / 1000;
clearInterval(scraper);

say(`bench/agent: ${cpus().length} CPUs, Node ${process.version}, ${execFileSync(EXPORTER, ["--version"]).toString().split("\n")[0] ?? ""}`);
say(`bench/agent: ${span.toFixed(1)} s measured after ${warmup} s of warm-up, both at 1 s: odop agent pushed ${pushes - pushesBefore} times (${samples} samples in all, ${rejected} rejected); node_exporter scraped ${scrapes - scrapesBefore} times (${Math.round(scrapeBytes / Math.max(1, scrapes) / 1024)} KiB a scrape)`);
for (const [k, pid] of Object.entries(procs)) {
  const used = cpuSeconds(pid) - (start[k] ?? 0);
  const r = rss[k] ?? [];
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  say(`${k.padEnd(13)} CPU ${((100 * used) / span).toFixed(2)} % of one core (${used.toFixed(2)} s in ${span.toFixed(0)} s); RSS max ${mb(Math.max(...r))} MB, mean ${mb(r.reduce((a, b) => a + b, 0) / Math.max(1, r.length))} MB`);
}
say("goal for odop agent: ≤ 0.5 % of one core and ≤ 60 MB");
controller.close();
cleanup();
process.exit(0);
