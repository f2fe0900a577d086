/** The local backend with real processes: pinning, priority, exit codes, pause, stop, re-adoption. */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatCpuset, parseCpuset } from "../../src/api/cpuset.ts";
import { detectPriority, LocalBackend } from "../../src/backends/local/local-backend.ts";
import type { StagePlan, StageState } from "../../src/backends/types.ts";

const started: { backend: LocalBackend; plan: StagePlan }[] = [];

afterEach(async () => {
  for (const { backend, plan } of started.splice(0)) await backend.stop(plan);
});

async function setup() {
  const root = mkdtempSync(join(tmpdir(), "odop-local-"));
  const backend = new LocalBackend({ stateRoot: join(root, "state"), priority: await detectPriority(), stopGraceMs: 1000 });
  const cwd = join(root, "workspace");
  const plan = (argv: string[], extra: Partial<StagePlan> = {}): StagePlan => ({
    task: {} as StagePlan["task"], // the local backend runs argv; it does not read the task
    opExecution: {} as StagePlan["opExecution"],
    node: "local",
    execution: "default/x",
    stage: "run",
    attempt: 1,
    argv,
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    cwd,
    cores: [0],
    ioBound: false,
    ...extra,
  });
  return { root, backend, cwd, plan };
}

async function until(backend: LocalBackend, plan: StagePlan, want: (s: StageState) => boolean, what: string): Promise<StageState> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const state = await backend.observe(plan);
    if (want(state)) return state;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last state ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("cpuset lists", () => {
  it.each([
    [[0, 1, 2, 3, 8], "0-3,8"],
    [[5], "5"],
    [[3, 1, 2, 10, 11], "1-3,10-11"],
    [[], ""],
  ])("%j ↔ %s", (cores, text) => {
    expect(formatCpuset(cores)).toBe(text);
    expect(parseCpuset(text)).toEqual([...cores].sort((a, b) => a - b));
  });

  it("refuses what is not a cpuset", () => {
    expect(() => parseCpuset("0-3,x")).toThrow(/not a cpuset list/);
    expect(() => parseCpuset("3-1")).toThrow(/descending/);
  });
});

describe("LocalBackend", () => {
  it("runs a stage pinned to its cores at idle priority, with its output kept, and reports the exit code", async () => {
    const { backend, cwd, plan } = await setup();
    const p = plan(["bash", "-c", 'grep Cpus_allowed_list /proc/self/status; chrt -p $$; echo to-stderr >&2; exit 3'], { cores: [1] });
    await backend.start(p);
    const state = await until(backend, p, (s) => s.state === "exited", "exit");
    expect(state).toMatchObject({ state: "exited", exitCode: 3 });
    const out = readFileSync(join(cwd, "logs", "run-1.out"), "utf8");
    expect(out).toMatch(/Cpus_allowed_list:\s+1\n/);
    const priority = await detectPriority();
    if (priority.cpu === "sched-idle") expect(out).toMatch(/SCHED_IDLE/);
    expect(readFileSync(join(cwd, "logs", "run-1.err"), "utf8")).toBe("to-stderr\n");
  });

  it("reports a program killed by a signal as 128+N, and CPU seconds from the wrapper", async () => {
    const { backend, plan } = await setup();
    const p = plan(["bash", "-c", "kill -KILL $$"]);
    await backend.start(p);
    expect(await until(backend, p, (s) => s.state === "exited", "exit")).toMatchObject({ exitCode: 137 });
    const q = plan(["bash", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"], { attempt: 2 });
    await backend.start(q);
    const done = await until(backend, q, (s) => s.state === "exited", "exit");
    expect(done).toMatchObject({ exitCode: 0 });
    expect(done.state === "exited" && done.cpuSeconds).toBeGreaterThan(0);
  });

  it("starts a stage once: a second start returns its state", async () => {
    const { backend, cwd, plan } = await setup();
    const p = plan(["bash", "-c", "echo started >> marker; sleep 30"]);
    started.push({ backend, plan: p });
    const first = await backend.start(p);
    const second = await backend.start(p);
    expect(first.state).toBe("running");
    expect(second.state).toBe("running");
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(join(cwd, "marker"), "utf8")).toBe("started\n");
  });

  it("pauses and resumes the whole process group, re-pinning it", async () => {
    const { backend, plan } = await setup();
    const p = plan(["bash", "-c", "sleep 30 & wait"]);
    started.push({ backend, plan: p });
    await backend.start(p);
    const running = await until(backend, p, (s) => s.state === "running" && s.pids.length >= 2, "two processes");
    await backend.pause(p);
    // "paused" means every process of the group has stopped (the kernel stops each when it next runs it).
    await until(backend, p, (s) => s.state === "paused", "paused");
    const pids = running.state === "running" ? running.pids : [];
    for (const pid of pids) expect(readFileSync(`/proc/${pid}/stat`, "utf8")).toMatch(/\) T /);
    await backend.resume(p, [1]);
    await until(backend, p, (s) => s.state === "running", "running again");
    for (const pid of pids) expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/Cpus_allowed_list:\s+1\n/);
  });

  it("stops a stage, paused or not, and says it was stopped", async () => {
    const { backend, plan } = await setup();
    const p = plan(["bash", "-c", "trap '' TERM; sleep 30 & wait"]);
    await backend.start(p);
    await backend.pause(p);
    await backend.stop(p);
    expect(await backend.observe(p)).toEqual({ state: "stopped" });
  });

  it("re-adopts a stage after the backend (the controller) is gone", async () => {
    const { root, backend, plan } = await setup();
    const p = plan(["bash", "-c", "sleep 0.5; exit 7"]);
    await backend.start(p);
    const restarted = new LocalBackend({ stateRoot: join(root, "state"), priority: await detectPriority() });
    expect((await restarted.observe(p)).state).toBe("running");
    expect(await until(restarted, p, (s) => s.state === "exited", "exit")).toMatchObject({ exitCode: 7 });
    expect(await restarted.observe({ ...p, attempt: 2 })).toEqual({ state: "absent" });
  });

  it("tells a stage that vanished without an exit code from one that never started", async () => {
    const { backend, plan } = await setup();
    const p = plan(["sleep", "30"]);
    const state = await backend.start(p);
    const leader = state.state === "running" ? state.pids[0] : undefined;
    expect(leader).toBeDefined();
    process.kill(-leader!, "SIGKILL");
    const lost = await until(backend, p, (s) => s.state !== "running", "gone");
    expect(lost.state).toBe("lost");
  });

  it("notifies when a stage it started ends", async () => {
    const { backend, plan } = await setup();
    const p = plan(["true"]);
    const ended = new Promise((resolve) => backend.onChange(resolve));
    await backend.start(p);
    expect(await ended).toEqual({ execution: "default/x", stage: "run", attempt: 1 });
  });
});
