/**
 * The Slurm backend against a real single-node Slurm 22.05 (munged, slurmctld, slurmd,
 * slurmrestd with JWT on 127.0.0.1, started by test/support/slurm.ts): executions run as
 * real Slurm jobs whose steps are real processes, driven by the embedded engine.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { OpExecution } from "../../../src/api/opexecution.ts";
import type { OpTask } from "../../../src/api/optask.ts";
import { eventually, manualExecution, phaseIn, testTask } from "../../support/engine.ts";
import { type SlurmCluster, sharedDir } from "../../support/slurm.ts";
import { slurmForFile } from "../../support/slurm-suite.ts";
import { type SlurmTestEngine, startSlurmEngine } from "../../support/slurm-engine.ts";

let cluster: SlurmCluster;
const engines: SlurmTestEngine[] = [];
const servers: Server[] = [];

slurmForFile((c) => (cluster = c));
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
  for (const s of servers.splice(0)) s.close();
});

async function engine(options: { root?: string; restUrl?: string } = {}): Promise<SlurmTestEngine> {
  const t = await startSlurmEngine(cluster, options);
  engines.push(t);
  return t;
}

const task = (name: string, spec: Partial<OpTask["spec"]>): OpTask => testTask(name, { backend: "slurm", run: { script: "true" }, ...spec });

let ids = 0;
/** Each execution its own uid, as in a real cluster (the job's comment carries it). */
const manual = (taskName: string, name: string): OpExecution => manualExecution(taskName, name, `6f1c2b0e-3d4a-4f5b-8c9d-${String(++ids).padStart(12, "0")}`);
const phaseOf = (t: SlurmTestEngine, name: string, want: string[], also?: (e: OpExecution) => boolean): Promise<OpExecution> => phaseIn(t.store, name, want, also, 40_000);

/** Slurm's own view of a job, from scontrol (not from odop's client). */
function scontrolJob(jobId: number): Record<string, string> {
  const out = execFileSync("scontrol", ["show", "job", "-o", String(jobId)], { env: { ...process.env, ...cluster.env } }).toString();
  return Object.fromEntries(out.trim().split(/\s+/).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
}

/** Jobs of this cluster whose comment names the execution, from squeue. */
function jobsOf(execution: string): string[] {
  const out = execFileSync("squeue", ["-h", "-t", "all", "-o", "%i|%k"], { env: { ...process.env, ...cluster.env } }).toString();
  return out.split("\n").filter((l) => l.includes(`,execution=default/${execution},`)).map((l) => l.split("|")[0] ?? "");
}

/** Linux process state (R, S, T…) of a pid. */
function procState(pid: number): string | undefined {
  try {
    return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  } catch {
    return undefined;
  }
}

describe("Slurm backend on a real Slurm (slurmrestd openapi/v0.0.38)", () => {
  it("runs configure, run and publish as steps of one job on the chosen node, and the execution succeeds", async () => {
    const dir = await sharedDir(cluster, "success");
    writeFileSync(join(dir, "input.txt"), "reference data\n");
    const t = await engine();
    await t.store.create(
      task("upper", {
        run: { script: 'set -eu\nmkdir -p outputs\ntr a-z A-Z < inputs/input.txt > outputs/result.txt\necho "node $SLURMD_NODENAME job $SLURM_JOB_ID cpus $SLURM_CPUS_PER_TASK"' },
        stages: {
          configure: { inputs: [{ from: `file://${dir}/input.txt`, to: "inputs/input.txt", optional: false }] },
          publish: { outputs: [{ from: "outputs/result.txt", to: `file://${dir}/published/result.txt`, optional: false }] },
        },
        requirements: { cpu: { min: 1, max: 1 }, time: "5m", ioBound: false },
      }),
    );
    await t.store.create(manual("upper", "upper-1"));
    const done = await phaseOf(t, "upper-1", ["Succeeded", "Failed"]);
    expect(done.status?.message).toBe("all stages succeeded (attempt 1)");
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.node).toBe(cluster.node);
    expect(done.status?.stages?.map((s) => [s.name, s.phase])).toEqual([["configure", "Succeeded"], ["run", "Succeeded"], ["publish", "Succeeded"]]);
    expect(readFileSync(join(dir, "published/result.txt"), "utf8")).toBe("REFERENCE DATA\n");
    const jobId = done.status?.backend?.slurmJobId;
    expect(done.status?.backend?.kind).toBe("slurm");
    expect(jobsOf("upper-1")).toEqual([String(jobId)]);
    const job = scontrolJob(jobId ?? 0);
    expect(job).toMatchObject({ JobState: "COMPLETED", ExitCode: "0:0", NodeList: cluster.node, TimeLimit: "00:15:00" });
    expect(job["Comment"]).toBe(`odop.io/execution-id=${done.spec.executionId},execution=default/upper-1,attempt=1`);
    const log = readFileSync(join(done.status?.backend?.workspace ?? "", "logs", "run-1.out"), "utf8");
    expect(log).toBe(`node ${cluster.node} job ${jobId} cpus 1\n`);
  });

  it.each([
    ["configure", { stages: { configure: { inputs: [{ from: "file:///nonexistent/input.txt", to: "inputs/x", optional: false }] } } }, "ConfigureFailed", /configure exited with code \d+/],
    ["run", { run: { script: "echo failing >&2; exit 3" } }, "RunFailed", /run exited with code 3/],
    ["publish", { stages: { publish: { outputs: [{ from: "outputs/never-made.txt", to: "file:///tmp/odop-never/x", optional: false }] } } }, "PublishFailed", /publish exited with code \d+/],
  ] as const)("fails the execution when its %s step fails, with that stage's reason", async (stage, spec, reason, message) => {
    const t = await engine();
    await t.store.create(task(`fail-${stage}`, spec as Partial<OpTask["spec"]>));
    await t.store.create(manual(`fail-${stage}`, `fail-${stage}-1`));
    const done = await phaseOf(t, `fail-${stage}-1`, ["Succeeded", "Failed"]);
    expect(done.status).toMatchObject({ phase: "Failed", reason });
    expect(done.status?.message).toMatch(message);
    expect(done.status?.stages?.at(-1)).toMatchObject({ name: stage, phase: "Failed" });
    // The failing step ended the job: Slurm reports it FAILED with that exit code.
    const job = scontrolJob(done.status?.backend?.slurmJobId ?? 0);
    expect(job["JobState"]).toBe("FAILED");
    expect(job["ExitCode"]).toBe(`${done.status?.stages?.at(-1)?.exitCode ?? -1}:0`);
  });

  it("stops the job at requirements.time and cancels it in Slurm", async () => {
    const t = await engine();
    await t.store.create(task("slow", { run: { script: "sleep 60" }, requirements: { time: "2s", ioBound: false } }));
    await t.store.create(manual("slow", "slow-1"));
    const done = await phaseOf(t, "slow-1", ["Succeeded", "Failed"]);
    expect(done.status).toMatchObject({ phase: "Failed", reason: "TimeLimit" });
    await eventually(() => (scontrolJob(done.status?.backend?.slurmJobId ?? 0)["JobState"] === "CANCELLED" ? true : undefined), "the job CANCELLED in Slurm");
  });

  it("pauses and resumes the running step through slurmrestd (the batch script stops and continues it)", async () => {
    const dir = await sharedDir(cluster, "pause");
    const t = await engine();
    // The step records its pid, then counts until a flag file appears.
    await t.store.create(task("steer", { run: { script: `echo $$ > ${dir}/pid\nwhile [ ! -e ${dir}/go ]; do sleep 0.1; done\necho done` } }));
    await t.store.create(manual("steer", "steer-1"));
    await phaseOf(t, "steer-1", ["Running"]);
    const pid = Number(await eventually(() => (existsSync(join(dir, "pid")) ? readFileSync(join(dir, "pid"), "utf8").trim() : undefined), "the step's pid"));
    const execution = await t.store.get("OpExecution", "default", "steer-1");
    await t.store.update({ ...execution!, spec: { ...execution!.spec, action: "Pause" } });
    await phaseOf(t, "steer-1", ["Paused"]);
    await eventually(() => (procState(pid) === "T" ? true : undefined), "the step's process stopped (T)");
    // Paused, it does not see the flag.
    writeFileSync(join(dir, "go"), "");
    await new Promise((r) => setTimeout(r, 500));
    expect(procState(pid)).toBe("T");
    const paused = await t.store.get("OpExecution", "default", "steer-1");
    await t.store.update({ ...paused!, spec: { ...paused!.spec, action: "Run" } });
    const done = await phaseOf(t, "steer-1", ["Succeeded", "Failed"]);
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.stages?.find((s) => s.name === "run")?.pausedSeconds ?? 0).toBeGreaterThan(0);
  });

  it("cancels the job when the execution is stopped", async () => {
    const t = await engine();
    await t.store.create(task("cancel", { run: { script: "sleep 60" } }));
    await t.store.create(manual("cancel", "cancel-1"));
    const running = await phaseOf(t, "cancel-1", ["Running"], (e) => e.status?.backend?.slurmJobId !== undefined);
    await t.store.update({ ...running, spec: { ...running.spec, action: "Stop" } });
    const done = await phaseOf(t, "cancel-1", ["Cancelled"]);
    expect(done.status?.reason).toBe("StoppedByUser");
    expect(scontrolJob(running.status?.backend?.slurmJobId ?? 0)["JobState"]).toBe("CANCELLED");
  });

  it("reports a job cancelled outside odop (scancel) as CancelledInSlurm", async () => {
    const t = await engine();
    await t.store.create(task("scancel", { run: { script: "sleep 60" } }));
    await t.store.create(manual("scancel", "scancel-1"));
    const running = await phaseOf(t, "scancel-1", ["Running"], (e) => e.status?.backend?.slurmJobId !== undefined);
    execFileSync("scancel", [String(running.status?.backend?.slurmJobId)], { env: { ...process.env, ...cluster.env } });
    const done = await phaseOf(t, "scancel-1", ["Failed"]);
    expect(done.status?.reason).toBe("CancelledInSlurm");
    expect(done.status?.message).toMatch(/was cancelled outside odop/);
  });

  it("re-adopts the running job after a controller restart instead of submitting again", async () => {
    const dir = await sharedDir(cluster, "restart");
    const first = await engine();
    await first.store.create(task("once", { run: { script: `echo start >> ${dir}/marker\nsleep 3\necho end >> ${dir}/marker` } }));
    await first.store.create(manual("once", "once-1"));
    await phaseOf(first, "once-1", ["Running"], (e) => e.status?.backend?.slurmJobId !== undefined);
    await first.stop(false); // a crash: the job is left to Slurm
    const second = await engine({ root: first.root });
    const done = await phaseOf(second, "once-1", ["Succeeded", "Failed"]);
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.attempts).toBe(1);
    expect(readFileSync(join(dir, "marker"), "utf8")).toBe("start\nend\n");
    expect(jobsOf("once-1")).toHaveLength(1);
  });

  it("rides out a slurmrestd restart mid-run (BackendReachable=False, SlurmUnreachable), then succeeds", async () => {
    const dir = await sharedDir(cluster, "outage");
    const t = await engine();
    await t.store.create(task("outage", { run: { script: `while [ ! -e ${dir}/go ]; do sleep 0.1; done` } }));
    await t.store.create(manual("outage", "outage-1"));
    await phaseOf(t, "outage-1", ["Running"], (e) => e.status?.backend?.slurmJobId !== undefined);
    await cluster.stopRest();
    const down = await phaseOf(t, "outage-1", ["Running"], (e) => e.status?.conditions?.some((c) => c.type === "BackendReachable" && c.status === "False") === true);
    expect(down.status?.conditions?.find((c) => c.type === "BackendReachable")).toMatchObject({ reason: "SlurmUnreachable" });
    writeFileSync(join(dir, "go"), "");
    await cluster.startRest();
    const done = await phaseOf(t, "outage-1", ["Succeeded", "Failed"]);
    expect(done.status?.message).toBe("all stages succeeded (attempt 1)");
    expect(done.status?.conditions?.find((c) => c.type === "BackendReachable")).toMatchObject({ status: "True" });
    expect(jobsOf("outage-1")).toHaveLength(1);
  });

  it("submits once when slurmrestd's answer to the submission is lost", async () => {
    // A proxy that passes every request on, but drops the connection instead of returning the first job/submit answer.
    let dropped = 0;
    const target = new URL(cluster.restUrl);
    const proxy = createServer((req, res) => {
      const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        if (req.url?.endsWith("/job/submit") && dropped === 0) {
          dropped++;
          answer.resume();
          answer.on("end", () => res.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    servers.push(proxy);
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const t = await engine({ restUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
    await t.store.create(task("lossy", { run: { script: "echo ok" } }));
    await t.store.create(manual("lossy", "lossy-1"));
    const done = await phaseOf(t, "lossy-1", ["Succeeded", "Failed"]);
    expect(dropped).toBe(1);
    expect(done.status?.phase).toBe("Succeeded");
    expect(jobsOf("lossy-1")).toHaveLength(1);
  });

  it("places a task with target.slurmJob on the node of that job, and publishes the Slurm node as an OpNode", async () => {
    const dir = await sharedDir(cluster, "colocated");
    mkdirSync(join(dir, "out"), { recursive: true });
    // The main application: a Slurm job of the cluster's user on one core.
    const main = execFileSync("sbatch", ["--parsable", "--job-name=sim-main", "-n1", "-c1", `--uid=${cluster.user}`, `--chdir=${dir}`, "--output=/dev/null", "--wrap", "sleep 60"], { env: { ...process.env, ...cluster.env } })
      .toString()
      .trim();
    try {
      const t = await engine();
      await eventually(() => (scontrolJob(Number(main))["JobState"] === "RUNNING" ? true : undefined), "the main job running");
      await t.store.create(task("beside", { target: { slurmJob: { name: "sim-main" } }, run: { script: "echo beside" } }));
      await t.store.create(manual("beside", "beside-1"));
      const done = await phaseOf(t, "beside-1", ["Succeeded", "Failed"]);
      expect(done.status?.phase).toBe("Succeeded");
      expect(done.status?.node).toBe(cluster.node);
      const node = await eventually(() => t.store.get("OpNode", undefined, cluster.node), "the OpNode");
      expect(node.status).toMatchObject({ source: "slurm", capacity: { cores: cluster.cpus }, slurm: { partitions: [cluster.partition] } });
      expect(node.status?.slurm?.state.length).toBeGreaterThan(0);
    } finally {
      execFileSync("scancel", [main], { env: { ...process.env, ...cluster.env } });
    }
  });
});
