/**
 * The embedded engine end to end: a real journalled store, real stage processes, real
 * /proc sampling, real files and real HTTP servers on 127.0.0.1. Only the hold window
 * and sampling interval are shortened.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { OpExecution } from "../../src/api/opexecution.ts";
import { eventually, manualExecution, phaseIn, startEngine, type TestEngine, testTask } from "../support/engine.ts";

const engines: TestEngine[] = [];
const children: ChildProcess[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const s of servers.splice(0)) s.close();
});

const task = testTask;
const manual = (taskName: string, name: string): OpExecution => manualExecution(taskName, name);
const phaseOf = (t: TestEngine, name: string, want: string[], also?: (e: OpExecution) => boolean): Promise<OpExecution> => phaseIn(t.store, name, want, also);

/** Running with its processes recorded (the phase is written before the stage starts). */
const withPids = (e: OpExecution) => (e.status?.backend?.pids ?? []).length > 0;

async function setAction(t: TestEngine, name: string, action: OpExecution["spec"]["action"]): Promise<void> {
  const e = await t.store.get("OpExecution", "default", name);
  await t.store.update({ ...e!, spec: { ...e!.spec, action } });
}

function start(command: string, args: string[]): ChildProcess {
  const c = spawn(command, args, { stdio: "ignore" });
  children.push(c);
  return c;
}

function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "odop-engine-files-"));
}

describe("embedded engine", () => {
  it("runs a manual execution to Succeeded, pinned, with its output and usage kept", async () => {
    const t = await startEngine();
    engines.push(t);
    await t.store.create(task("hello", { run: { command: ["bash", "-c", "echo hello from $ODOP_EXECUTION on $ODOP_CORES with $ODOP_THREADS threads"] } }));
    await t.store.create(manual("hello", "hello-1"));
    const done = await phaseOf(t, "hello-1", ["Succeeded", "Failed"]);
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.attempts).toBe(1);
    expect(done.status?.stages?.map((s) => [s.name, s.phase, s.exitCode])).toEqual([["run", "Succeeded", 0]]);
    const out = readFileSync(join(done.status?.backend?.workspace ?? "", "logs", "run-1.out"), "utf8");
    expect(out).toBe(`hello from hello-1 on ${done.status?.cpuset} with 1 threads\n`);
    expect(done.status?.usage?.wallSeconds).toBeGreaterThanOrEqual(0);
    expect(done.status?.conditions?.find((c) => c.type === "Complete")).toMatchObject({ status: "True", reason: "Succeeded" });
    const taskStatus = await eventually(async () => {
      const s = (await t.store.get("OpTask", "default", "hello"))?.status;
      return s?.succeeded === 1 ? s : undefined;
    }, "task counts");
    expect(taskStatus.lastExecution).toMatchObject({ name: "hello-1", phase: "Succeeded" });
    expect(taskStatus.profile?.runs).toBe(1);
  });

  it("pauses an execution when the main application takes its core back, and resumes it when the core is idle again", async () => {
    const dir = tempDir();
    const flag = join(dir, "busy");
    // The main application: one thread always busy on core 0, one on core 1 that is busy only while the flag exists.
    const hog = start("taskset", ["-c", "0", "bash", "-c", "while :; do :; done"]);
    const toggler = start("taskset", ["-c", "1", "bash", "-c", `while :; do if [ -e ${flag} ]; then :; else sleep 0.05; fi; done`]);
    const t = await startEngine({ main: () => ({ pids: [hog.pid ?? 0, toggler.pid ?? 0] }) });
    engines.push(t);
    await t.store.create(task("harvest", { run: { command: ["sleep", "60"] }, policy: { priority: 0, onContention: "pause", concurrency: 1 } }));
    await t.store.create(manual("harvest", "harvest-1"));

    const running = await phaseOf(t, "harvest-1", ["Running"], withPids);
    expect(running.status?.cpuset).toBe("1");
    const pids = running.status?.backend?.pids ?? [];
    expect(pids.length).toBeGreaterThan(0);

    writeFileSync(flag, "");
    const paused = await phaseOf(t, "harvest-1", ["Paused"]);
    expect(paused.status?.reason).toBe("CoresReclaimed");
    // The recorded pids may include a short-lived helper of the stage's wrapper (its `mv`, at start): look at those still there.
    const live = pids.filter((pid) => stateOf(pid) !== undefined);
    expect(live.length).toBeGreaterThan(0);
    // A process stops when the kernel next runs it (SCHED_IDLE on busy cores: later): wait, bounded.
    for (const pid of live) await eventually(() => (stateOf(pid) === "T" ? true : undefined), `process ${pid} stopped (T)`);

    rmSync(flag);
    const resumed = await phaseOf(t, "harvest-1", ["Running"]);
    expect(resumed.status?.reason).toBe("CoresFree");
    expect(resumed.status?.cpuset).toBe("1");
    for (const pid of live) expect(stateOf(pid)).not.toBe("T");
    expect(resumed.status?.stages?.[0]?.pausedSeconds).toBeGreaterThan(0);

    // Events are recorded off the reconcile's path: they follow the status shortly.
    const want = ["Scheduled", "StageStarted", "Paused", "Resumed"];
    await eventually(async () => {
      const got = (await t.store.events({ kind: "OpExecution", namespace: "default", name: "harvest-1" })).map((e) => e.reason);
      return want.every((r) => got.includes(r)) ? true : undefined;
    }, `the events ${want.join(", ")}`);
    await setAction(t, "harvest-1", "Stop");
    expect((await phaseOf(t, "harvest-1", ["Cancelled"])).status?.reason).toBe("StoppedByUser");
  });

  it("re-adopts a running stage after a restart: the run neither repeats nor is lost", async () => {
    const dir = tempDir();
    const marker = join(dir, "marker");
    const first = await startEngine();
    await first.store.create(task("once", { run: { command: ["bash", "-c", `echo start >> ${marker}; sleep 1.5; echo end >> ${marker}`] } }));
    await first.store.create(manual("once", "once-1"));
    await phaseOf(first, "once-1", ["Running"]);
    await first.stop(false); // the controller goes away; the stage does not

    const second = await startEngine({ root: first.root });
    engines.push(second);
    const done = await phaseOf(second, "once-1", ["Succeeded", "Failed"]);
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.attempts).toBe(1);
    expect(readFileSync(marker, "utf8")).toBe("start\nend\n");
  });

  it("fails on a non-zero exit with its code, after the retries it was given", async () => {
    const t = await startEngine();
    engines.push(t);
    await t.store.create(task("flaky", { run: { command: ["bash", "-c", "echo attempt >&2; exit 3"] }, policy: { priority: 0, onContention: "pause", concurrency: 1, retries: { limit: 1, backoff: "200ms" } } }));
    await t.store.create(manual("flaky", "flaky-1"));
    const failed = await phaseOf(t, "flaky-1", ["Failed"]);
    expect(failed.status).toMatchObject({ reason: "RunFailed", message: "run exited with code 3", attempts: 2, retries: 1 });
    expect(failed.status?.stages?.[0]).toMatchObject({ name: "run", phase: "Failed", exitCode: 3, attempt: 2 });
    await eventually(async () => ((await t.store.events({ kind: "OpExecution", namespace: "default", name: "flaky-1" })).some((e) => e.reason === "Retrying") ? true : undefined), "a Retrying event");
    expect(readFileSync(join(failed.status?.backend?.workspace ?? "", "logs", "run-1.err"), "utf8")).toBe("attempt\n");
  });

  it("asks the backend to clean up once an execution has ended, saying whether it succeeded", async () => {
    const cleaned: [string, boolean][] = [];
    const t = await startEngine({ onCleanup: (ref, succeeded) => cleaned.push([`${ref.execution} ${ref.stage}-${ref.attempt}`, succeeded]) });
    engines.push(t);
    await t.store.create(task("ok", { run: { command: ["true"] } }));
    await t.store.create(task("ko", { run: { command: ["false"] } }));
    await t.store.create(manual("ok", "ok-1"));
    await t.store.create(manual("ko", "ko-1"));
    await phaseOf(t, "ok-1", ["Succeeded"]);
    await phaseOf(t, "ko-1", ["Failed"]);
    await eventually(() => (cleaned.length === 2 ? true : undefined), "two cleanups");
    expect(cleaned.sort()).toEqual([
      ["default/ko-1 run-1", false],
      ["default/ok-1 run-1", true],
    ]);
  });

  it("enforces requirements.time", async () => {
    const t = await startEngine();
    engines.push(t);
    await t.store.create(task("slow", { run: { command: ["sleep", "60"] }, requirements: { time: "1s", ioBound: false } }));
    await t.store.create(manual("slow", "slow-1"));
    const failed = await phaseOf(t, "slow-1", ["Failed"]);
    expect(failed.status?.reason).toBe("TimeLimit");
  });

  it("follows a person's pause, resume and skip", async () => {
    const t = await startEngine();
    engines.push(t);
    await t.store.create(task("steer", { run: { command: ["sleep", "60"] } }));
    await t.store.create(manual("steer", "steer-1"));
    const running = await phaseOf(t, "steer-1", ["Running"], withPids);
    const pid = running.status?.backend?.pids?.[0] ?? 0;
    await setAction(t, "steer-1", "Pause");
    expect((await phaseOf(t, "steer-1", ["Paused"])).status?.reason).toBe("PausedByUser");
    await eventually(() => (stateOf(pid) === "T" ? true : undefined), "the stage's process stopped (T)");
    await setAction(t, "steer-1", "Run");
    expect((await phaseOf(t, "steer-1", ["Running"])).status?.reason).toBe("ResumedByUser");
    await setAction(t, "steer-1", "Skip");
    expect((await phaseOf(t, "steer-1", ["Skipped"])).status?.reason).toBe("SkippedByUser");
    await eventually(() => (stateOf(pid) === undefined ? true : undefined), "the stage to be gone");
  });

  it("stages inputs in over HTTP, publishes outputs with PUT, and signs start and finish notifications", async () => {
    const received: { method: string; url: string; body: string; headers: IncomingMessage["headers"] }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ method: req.method ?? "", url: req.url ?? "", body: Buffer.concat(chunks).toString("utf8"), headers: req.headers });
        if (req.method === "GET") res.end("reference data\n");
        else res.end();
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const t = await startEngine({ notifyKey: "s3cret" });
    engines.push(t);
    await t.store.create(
      task("stage", {
        run: { command: ["bash", "-c", "mkdir -p outputs && tr a-z A-Z < inputs/ref.txt > outputs/result.txt"] },
        stages: {
          configure: { inputs: [{ from: `${base}/ref.txt`, to: "inputs/ref.txt", optional: false }] },
          publish: { outputs: [{ from: "outputs/result.txt", to: `${base}/upload/result.txt`, optional: false }], notify: { started: `${base}/hooks/started`, finished: `${base}/hooks/finished` } },
        },
      }),
    );
    await t.store.create(manual("stage", "stage-1"));
    const done = await phaseOf(t, "stage-1", ["Succeeded", "Failed"]);
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.stages?.map((s) => s.name)).toEqual(["configure", "run", "publish"]);
    await eventually(() => (received.some((r) => r.url === "/hooks/finished") ? true : undefined), "the finished notification");
    const put = received.find((r) => r.method === "PUT");
    expect(put).toMatchObject({ url: "/upload/result.txt", body: "REFERENCE DATA\n" });
    for (const event of ["started", "finished"]) {
      const hook = received.find((r) => r.url === `/hooks/${event}`);
      expect(JSON.parse(hook?.body ?? "{}")).toMatchObject({ event, execution: { name: "stage-1", task: "stage" } });
      const timestamp = String(hook?.headers["x-odop-timestamp"]);
      const want = createHmac("sha256", "s3cret").update(`${timestamp}.${hook?.body ?? ""}`).digest("hex");
      expect(hook?.headers["x-odop-signature"]).toBe(`sha256=${want}`);
    }
    expect(JSON.parse(received.find((r) => r.url === "/hooks/finished")?.body ?? "{}")).toMatchObject({ phase: "Succeeded" });
  });

  it("creates executions from new files in batches, flushes a partial batch at drain, and propagates DepFailed down the DAG", async () => {
    const dir = tempDir();
    const t = await startEngine();
    engines.push(t);
    await t.store.create(
      task("ingest", {
        trigger: { fileIn: { path: dir, pattern: "*.dat", batchSize: 2 } },
        run: { command: ["bash", "-c", 'if grep -q bad $ODOP_TRIGGER_FILES; then exit 1; fi'] },
      }),
    );
    await t.store.create(task("after-ingest", { trigger: { after: { tasks: ["ingest"], when: "Succeeded" } }, run: { command: ["true"] } }));
    // Files older than the task are not new.
    writeFileSync(join(dir, "old.dat"), "old");
    utimesSync(join(dir, "old.dat"), new Date(2020, 0, 1), new Date(2020, 0, 1));
    writeFileSync(join(dir, "a.dat"), "good");
    writeFileSync(join(dir, "b.dat"), "good");
    writeFileSync(join(dir, "ignored.txt"), "not matching");
    const list = async () => (await t.store.list("OpExecution")).filter((e) => e.spec.taskRef.name === "ingest");
    const first = await eventually(async () => ((await list()).length === 1 ? (await list())[0] : undefined), "one batch");
    expect(first?.spec.trigger.files).toEqual([join(dir, "a.dat"), join(dir, "b.dat")]);
    writeFileSync(join(dir, "c.dat"), "bad");
    await new Promise((r) => setTimeout(r, 1000));
    expect(await list()).toHaveLength(1); // c.dat waits for a second file
    t.engine.drain();
    await eventually(async () => ((await list()).length === 2 ? true : undefined), "the partial batch");
    const downstream = await eventually(async () => {
      const d = (await t.store.list("OpExecution")).filter((e) => e.spec.taskRef.name === "after-ingest");
      return d.length === 2 && d.every((e) => e.status?.phase === "Succeeded" || e.status?.phase === "DepFailed") ? d : undefined;
    }, "both downstream executions to end");
    expect(downstream.map((e) => e.status?.phase).sort()).toEqual(["DepFailed", "Succeeded"]);
    expect(downstream.find((e) => e.status?.phase === "DepFailed")?.status?.message).toMatch(/upstream execution default\/ingest-\w+ ended Failed/);
    await eventually(() => (t.engine.drained ? true : undefined), "drained");
  });

  it("skips an execution whose products are newer than its dependencies", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "out"));
    writeFileSync(join(dir, "in.txt"), "x");
    utimesSync(join(dir, "in.txt"), new Date(2020, 0, 1), new Date(2020, 0, 1));
    writeFileSync(join(dir, "out", "product.txt"), "y");
    const t = await startEngine();
    engines.push(t);
    await t.store.create(task("make", { run: { command: ["false"] }, products: [join(dir, "out", "product.txt")], dependencies: [join(dir, "in.txt")] }));
    await t.store.create(manual("make", "make-1"));
    expect((await phaseOf(t, "make-1", ["Skipped", "Failed"])).status?.reason).toBe("UpToDate");
    expect(existsSync(join(dir, "out", "product.txt"))).toBe(true);
  });
});
