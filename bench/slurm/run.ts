/**
 * bench/slurm: odop on a real single-node Slurm (test/support/slurm.ts starts it here,
 * private to this run, and stops it at the end, also on failure or Ctrl-C).
 *
 * DESIGN §6 goals: "Slurm submission: executions per second through slurmrestd vs an
 * sbatch loop" and "Trigger latency: file closed → execution running ≤ 3 s (Slurm)".
 *
 * 1. Submission rate, N jobs a phase, a trivial batch script (`true`) as the job user,
 *    each phase on an idle cluster (squeue empty before it starts):
 *    a. an sbatch loop: N sequential `sbatch --parsable --uid=<user> … --wrap true`
 *       processes;
 *    b. odop's slurmrestd client (openapi/v0.0.38, minted JWT): N sequential
 *       api.submit() calls, then N with 8 in flight;
 *    c. odop end to end: N OpExecutions of a manual task created at once in the
 *       embedded engine with the Slurm backend: until every one has a Slurm job, and
 *       until every one has succeeded.
 * 2. Trigger latency: a fileIn task in the same engine setup; files written one after
 *    another, each closed at a known time; the run step records when it started.
 *
 *   npm run bench:slurm [-- --jobs 40 --files 15 --gap-ms 1500]
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { OpExecution } from "../../src/api/opexecution.ts";
import type { OpTask } from "../../src/api/optask.ts";
import { mintedToken } from "../../src/backends/slurm/rest/auth.ts";
import { createSlurmApi, type SlurmClient } from "../../src/backends/slurm/rest/client.ts";
import type { JobSubmission } from "../../src/backends/slurm/rest/types.ts";
import { manualExecution, testTask } from "../../test/support/engine.ts";
import { type SlurmCluster, sharedDir, startSlurm } from "../../test/support/slurm.ts";
import { type SlurmTestEngine, startSlurmEngine } from "../../test/support/slurm-engine.ts";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "40" },
    files: { type: "string", default: "15" },
    "gap-ms": { type: "string", default: "1500" },
  },
});
const jobs = positive("--jobs", values.jobs);
const files = positive("--files", values.files);
const gapMs = positive("--gap-ms", values["gap-ms"]);
const IN_FLIGHT = 8;
const SCRIPT = "#!/bin/bash\ntrue\n";

function positive(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number ≥ 1, got ${value}`);
  return n;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (line: string) => process.stderr.write(`bench/slurm: ${line}\n`);
const out = (line: string) => process.stdout.write(`${line}\n`);
/** The q-quantile of sorted values (the same rule as bench/trigger). */
const at = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const rate = (n: number, elapsedMs: number) => `${(n / (elapsedMs / 1000)).toFixed(1)}/s`;

/** Runs a command to its end (bounded); rejects with its stderr when it fails. */
function command(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr?.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code, sig) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(" ")}: ${sig === null ? `exit ${String(code)}` : `killed by ${sig} (timeout ${String(timeoutMs)} ms?)`}: ${stderr.trim()}`));
    });
    // A command that exits before reading its input must not crash the bench (EPIPE).
    child.stdin?.on("error", () => {});
    child.stdin?.end(input);
  });
}

/** Polls until `get` gives a value; throws `what` after timeoutMs. */
async function until<T>(what: string, timeoutMs: number, get: () => Promise<T | undefined>, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
    await wait(everyMs);
  }
}

// ------------------------------------------------------------------ cluster, cleanup

let cluster: SlurmCluster | undefined;
let api: SlurmClient | undefined;
const engines: SlurmTestEngine[] = [];
let cleaning: Promise<void> | undefined;
const cleanup = (): Promise<void> =>
  (cleaning ??= (async () => {
    for (const e of engines.splice(0)) await e.stop().catch((error: unknown) => progress(`engine stop: ${String(error)}`));
    api?.close();
    await cluster?.stop();
  })());
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    progress(`${sig}: stopping the cluster`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (error) {
  process.exitCode = 1;
  process.stderr.write(`bench/slurm: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  if (cluster !== undefined) process.stderr.write(`${cluster.logs()}\n`);
} finally {
  await cleanup();
}

async function main(): Promise<void> {
  const t0 = Date.now();
  progress("starting a private single-node Slurm");
  cluster = await startSlurm({ log: progress, timeoutMs: 60_000 });
  const c = cluster;
  const env = { ...process.env, ...c.env };
  const slurmVersion = (await command("sinfo", ["-V"], env)).trim();
  out(`bench/slurm: machine: ${String(availableParallelism())} CPUs (nproc), node ${process.version}, ${slurmVersion}; Slurm node ${c.node} with ${String(c.cpus)} CPUs, jobs as user ${c.user}`);
  out(`bench/slurm: ${String(jobs)} jobs a submission phase, each on an idle cluster; a trivial batch script (\`true\`), 1 CPU each`);

  const jobDir = await sharedDir(c, "jobs");
  const queueEmpty = async (after: string, since: number): Promise<number> => {
    await until(`the queue to empty after ${after} (squeue still lists jobs)`, 60_000 + jobs * 2_000, async () =>
      (await command("squeue", ["-h", "-o", "%i"], env)).trim() === "" ? true : undefined,
    100);
    return Date.now() - since;
  };
  await queueEmpty("start", Date.now());

  // a. sbatch loop.
  const sbatchArgs = ["--parsable", `--uid=${c.user}`, `--chdir=${jobDir}`, "--output=/dev/null", "--job-name=bench-sbatch", "--wrap", "true"];
  const sbatch: number[] = [];
  const aStart = performance.now();
  const aWall = Date.now();
  for (let i = 0; i < jobs; i++) {
    const s = performance.now();
    const id = (await command("sbatch", sbatchArgs, env)).trim();
    sbatch.push(performance.now() - s);
    if (!/^\d+$/.test(id)) throw new Error(`sbatch printed ${JSON.stringify(id)}, not a job id`);
  }
  const aMs = performance.now() - aStart;
  const aDrain = await queueEmpty("the sbatch loop", aWall);
  const a = sorted(sbatch);
  out(`1a sbatch loop (${String(jobs)} sequential \`sbatch --parsable --uid=${c.user} … --wrap true\` processes): ${rate(jobs, aMs)} (${String(Math.round(aMs))} ms); one submission p50 ${ms(at(a, 0.5))}, p95 ${ms(at(a, 0.95))}; all ${String(jobs)} jobs ended ${(aDrain / 1000).toFixed(1)} s after the first submit`);

  // b. odop's slurmrestd client.
  api = await createSlurmApi({ endpoint: c.restUrl, version: "v0.0.38", auth: mintedToken({ user: c.user, keyFile: c.jwtKeyPath }), maxConnections: IN_FLIGHT });
  const client = api;
  await client.ping(); // one connection and one token before the clock starts, as a running controller has them
  const submission = (i: number): JobSubmission => ({
    name: "bench-rest",
    comment: `bench ${String(i)}`,
    script: SCRIPT,
    workingDirectory: jobDir,
    standardOutput: "/dev/null",
    environment: { PATH: "/usr/bin:/bin" },
    cpusPerTask: 1,
  });
  const restPhase = async (inFlight: number): Promise<{ elapsed: number; latencies: number[]; drain: number }> => {
    const latencies: number[] = [];
    let next = 0;
    const wall = Date.now();
    const start = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < jobs) {
          const i = next++;
          const s = performance.now();
          const { jobId } = await client.submit(submission(i));
          latencies.push(performance.now() - s);
          if (!(jobId > 0)) throw new Error(`submit gave job id ${String(jobId)}`);
        }
      }),
    );
    const elapsed = performance.now() - start;
    const drain = await queueEmpty(`${String(inFlight)} in flight through slurmrestd`, wall);
    return { elapsed, latencies: sorted(latencies), drain };
  };
  const b1 = await restPhase(1);
  out(`1b slurmrestd, sequential (${String(jobs)} api.submit() one after another, openapi/v0.0.38, minted JWT, kept-alive connection): ${rate(jobs, b1.elapsed)} (${String(Math.round(b1.elapsed))} ms); one submission p50 ${ms(at(b1.latencies, 0.5))}, p95 ${ms(at(b1.latencies, 0.95))}; all jobs ended ${(b1.drain / 1000).toFixed(1)} s after the first submit`);
  const b8 = await restPhase(IN_FLIGHT);
  out(`1b slurmrestd, ${String(IN_FLIGHT)} in flight (${String(jobs)} api.submit(), ${String(IN_FLIGHT)} at a time on ${String(IN_FLIGHT)} connections): ${rate(jobs, b8.elapsed)} (${String(Math.round(b8.elapsed))} ms); one submission p50 ${ms(at(b8.latencies, 0.5))}, p95 ${ms(at(b8.latencies, 0.95))}; all jobs ended ${(b8.drain / 1000).toFixed(1)} s after the first submit`);

  // c. odop end to end.
  const e2e = await startSlurmEngine(c);
  engines.push(e2e);
  await e2e.store.create(
    task("bench-e2e", {
      run: { script: "true" },
      requirements: { cpu: { min: 1, max: 1 }, ioBound: false },
      policy: { priority: 0, onContention: "pause", concurrency: 1000 },
    }),
  );
  await wait(2_000); // the node source's first samples of the Slurm node
  const cStart = performance.now();
  await Promise.all(Array.from({ length: jobs }, (_, i) => e2e.store.create(manual("bench-e2e", `e2e-${String(i)}`))));
  let allSubmitted: number | undefined;
  const allSucceeded = await until(`${String(jobs)} executions to succeed`, 120_000 + jobs * 5_000, async () => {
    const list = await e2e.store.list("OpExecution", "default");
    const failed = list.find((e) => e.status?.phase === "Failed" || e.status?.phase === "Cancelled");
    if (failed !== undefined) throw new Error(`execution ${failed.metadata.name ?? "?"} ${failed.status?.phase ?? "?"}: ${failed.status?.reason ?? ""} ${failed.status?.message ?? ""}`);
    if (allSubmitted === undefined && list.length === jobs && list.every((e) => e.status?.backend?.slurmJobId !== undefined)) allSubmitted = performance.now() - cStart;
    return list.length === jobs && list.every((e) => e.status?.phase === "Succeeded") ? performance.now() - cStart : undefined;
  }, 50).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${await stuck(e2e, env)}`, { cause: error });
  });
  const submitted = allSubmitted ?? allSucceeded;
  out(`1c odop end to end (${String(jobs)} OpExecutions of a manual task, run.script "true", 1 core each, created at once in the embedded engine with the Slurm backend): submitted ${rate(jobs, submitted)} (all had a Slurm job after ${String(Math.round(submitted))} ms), completed ${rate(jobs, allSucceeded)} (all Succeeded after ${String(Math.round(allSucceeded))} ms); the node has ${String(c.cpus)} cores, odop places by free cores, so at most ${String(c.cpus)} run at once: the rate is bounded by that, not by slurmrestd`);
  await e2e.stop();
  engines.splice(engines.indexOf(e2e), 1);
  await queueEmpty("the end-to-end phase", Date.now());

  // 2. Trigger latency.
  const incoming = await sharedDir(c, "incoming");
  const marks = await sharedDir(c, "marks");
  const trig = await startSlurmEngine(c);
  engines.push(trig);
  await trig.store.create(
    task("bench-latency", {
      trigger: { fileIn: { path: incoming, pattern: "*.dat", batchSize: 1 } },
      run: { script: `date +%s%3N > ${marks}/"$(basename "$ODOP_TRIGGER_FILES")".started\ntrue\n` },
      requirements: { cpu: { min: 1, max: 1 }, ioBound: false },
      policy: { priority: 0, onContention: "pause", concurrency: 2 },
    }),
  );
  await wait(4_000); // as bench/trigger: the engine started, the node seen idle
  const closedAt = new Map<string, number>();
  for (let i = 0; i < files; i++) {
    const name = `f${String(i).padStart(3, "0")}.dat`;
    const fd = openSync(join(incoming, name), "w");
    writeSync(fd, Buffer.alloc(1 << 20, i));
    closeSync(fd);
    closedAt.set(name, Date.now());
    await wait(gapMs);
  }
  await until(`${String(files)} run steps to record their start in ${marks}`, 60_000, () => Promise.resolve(readdirSync(marks).length >= files ? true : undefined)).catch((error: unknown) =>
    progress(`${String(error)}; reporting those that ran`),
  );
  const latencies = sorted(
    [...closedAt]
      .map(([name, closed]) => {
        const mark = join(marks, `${name}.started`);
        return existsSync(mark) ? Number(readFileSync(mark, "utf8").trim()) - closed : Number.NaN;
      })
      .filter((x) => Number.isFinite(x)),
  );
  out(`2  trigger latency (fileIn task, ${String(files)} files of 1 MiB closed ${String(gapMs)} ms apart; run step's first line \`date +%s%3N\`, same clock): ${String(latencies.length)} of ${String(files)} ran; file closed → run step started: p50 ${String(at(latencies, 0.5))} ms, p95 ${String(at(latencies, 0.95))} ms, max ${String(latencies.at(-1) ?? Number.NaN)} ms (goal ≤ 3000 ms)`);
  out(`bench/slurm: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/** For a timeout's message: executions by phase, those not Succeeded with their status, and squeue. */
async function stuck(t: SlurmTestEngine, env: NodeJS.ProcessEnv): Promise<string> {
  const list = await t.store.list("OpExecution", "default");
  const phases = new Map<string, number>();
  for (const e of list) phases.set(e.status?.phase ?? "(none)", (phases.get(e.status?.phase ?? "(none)") ?? 0) + 1);
  const open = list.filter((e) => e.status?.phase !== "Succeeded").slice(0, 5);
  const queue = await command("squeue", ["-h", "-o", "%i %j %T %r %k"], env).catch((error: unknown) => String(error));
  return [
    `executions by phase: ${[...phases].map(([p, n]) => `${p} ${String(n)}`).join(", ")}`,
    ...open.map((e) => `${e.metadata.name ?? "?"}: ${JSON.stringify(e.status ?? {})}`),
    `squeue:\n${queue.trim() === "" ? "(empty)" : queue.trim()}`,
  ].join("\n");
}

// ------------------------------------------------------------------ objects

/** A manual task for the Slurm backend (test/support/engine.ts testTask), `run.script` "true" unless `spec` says otherwise. */
function task(name: string, spec: Partial<OpTask["spec"]>): OpTask {
  return testTask(name, { backend: "slurm", run: { script: "true" }, ...spec });
}

function manual(taskName: string, name: string): OpExecution {
  return manualExecution(taskName, name, randomUUID());
}
