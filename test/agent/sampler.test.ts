// The sampler against real processes. The machine may have only 2 cores and other tests
// may run beside these, so every check is on shares with wide margins, never on durations.
// A busy child pinned to a core does not always get the whole core (when other work fills
// the other core, it lands on ours), so its shares are checked against what the child
// really used, read from its process-wide /proc/PID/stat: a different file from the
// per-thread ones the sampler reads.
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type MainSelector, Sampler } from "../../src/agent/sampler.ts";
import { clockTicksPerSecond, descendants, readProcStat } from "../../src/agent/procfs.ts";
import { NodeSample } from "../../src/api/sample.ts";
import { BUSY_LOOP, Children, deadPid, onlineCpus, sleep, until } from "./processes.ts";

const BUSY_CPU = 1;
const OTHER_CPU = 0;
const children = new Children();
const scratch = mkdtempSync(join(tmpdir(), "odop-sampler-"));
afterEach(() => children.killAll());
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Setup {
  main?: MainSelector;
  odop?: readonly number[];
}

function sampler({ main, odop = [] }: Setup): Sampler {
  return new Sampler({ node: "node-a", main: () => main, odopRoots: () => odop });
}

/** Takes a baseline, then the sample of the ~1 s after it; checks it against the schema. */
async function sampleOverASecond(s: Sampler): Promise<NodeSample> {
  await s.sample();
  await sleep(1000);
  const sample = await s.sample();
  expect(NodeSample.parse(sample)).toEqual(sample);
  return sample;
}

/** Like sampleOverASecond, plus the share of a core `pid` really used over that interval. */
async function sampleWithTruth(s: Sampler, pid: number): Promise<{ sample: NodeSample; used: number }> {
  await s.sample();
  const before = readProcStat(pid)?.cpuTicks ?? Number.NaN;
  await sleep(1000);
  const sample = await s.sample();
  const after = readProcStat(pid)?.cpuTicks ?? Number.NaN;
  expect(NodeSample.parse(sample)).toEqual(sample);
  const used = (after - before) / ((sample.intervalMs / 1000) * clockTicksPerSecond());
  // The child did run (it gets at least a share of its core even on a crowded machine).
  expect(used).toBeGreaterThan(0.25);
  return { sample, used };
}

/** Shares read from ticks at slightly different instants agree within this. */
const CLOSE = 0.1;

function core(sample: NodeSample, id: number): NodeSample["cores"][number] {
  const found = sample.cores.find((c) => c.id === id);
  if (found === undefined) throw new Error(`no core ${id} in the sample`);
  return found;
}

describe.skipIf(!onlineCpus().includes(BUSY_CPU))("Sampler", () => {
  it("measures a busy main application by pid on the core it runs on", async () => {
    const busy = children.busy(BUSY_CPU);
    const { sample, used } = await sampleWithTruth(sampler({ main: { pids: [busy.pid] } }), busy.pid);

    expect(sample).toMatchObject({ version: "v1", node: "node-a" });
    expect(sample.cores.map((c) => c.id)).toEqual(onlineCpus());
    expect(sample.intervalMs).toBeGreaterThan(0);
    expect(Math.abs(core(sample, BUSY_CPU).main - used)).toBeLessThan(CLOSE);
    expect(core(sample, BUSY_CPU).total).toBeGreaterThanOrEqual(core(sample, BUSY_CPU).main);
    expect(core(sample, OTHER_CPU).main).toBeLessThan(0.2);
    for (const c of sample.cores) expect(c.odop).toBe(0);
    expect(sample.main.processes).toBe(1);
    expect(Math.abs(sample.main.cpu - used)).toBeLessThan(CLOSE);
    expect(sample.memory.mainBytes).toBeGreaterThan(0);
    expect(sample.memory.odopBytes).toBe(0);
  });

  it("counts odop's executions as odop, and not as main when no selector is set", async () => {
    const busy = children.busy(BUSY_CPU);
    const { sample, used } = await sampleWithTruth(sampler({ odop: [busy.pid] }), busy.pid);

    expect(Math.abs(core(sample, BUSY_CPU).odop - used)).toBeLessThan(CLOSE);
    expect(core(sample, OTHER_CPU).odop).toBeLessThan(0.2);
    // Without a selector, main is what is busy beyond odop: the child is not in it.
    for (const c of sample.cores) expect(c.main).toBeCloseTo(Math.max(0, c.total - c.odop), 9);
    expect(sample.main.processes).toBe(0);
    expect(sample.memory.odopBytes).toBeGreaterThan(0);
    expect(sample.memory.mainBytes).toBeLessThanOrEqual(sample.memory.totalBytes - sample.memory.availableBytes);
  });

  it("gives a process that is both main and odop to odop", async () => {
    const busy = children.busy(BUSY_CPU);
    const setup = { main: { pids: [busy.pid] }, odop: [busy.pid] };
    const { sample, used } = await sampleWithTruth(sampler(setup), busy.pid);

    expect(Math.abs(core(sample, BUSY_CPU).odop - used)).toBeLessThan(CLOSE);
    expect(core(sample, BUSY_CPU).main).toBe(0);
    expect(sample.main.processes).toBe(0);
  });

  it("never counts its own process as the main application", async () => {
    const sample = await sampler({ main: { pids: [process.pid] } }).sample();
    expect(sample.main).toEqual({ processes: 0, cpu: 0 });
  });

  it("includes the descendants of the main application's roots", async () => {
    const launcher = children.spawn("sh", ["-c", `taskset -c ${BUSY_CPU} sh -c '${BUSY_LOOP}' & wait`]);
    await until(() => descendants([launcher.pid]).length === 2, "the busy grandchild");
    const grandchild = descendants([launcher.pid])[1] ?? 0;
    const { sample, used } = await sampleWithTruth(sampler({ main: { pids: [launcher.pid] } }), grandchild);

    expect(sample.main.processes).toBe(2);
    expect(Math.abs(core(sample, BUSY_CPU).main - used)).toBeLessThan(CLOSE);
    expect(core(sample, OTHER_CPU).main).toBeLessThan(0.2);
  });

  it("finds the main application through a pid file", async () => {
    const busy = children.busy(BUSY_CPU);
    const pidFile = join(scratch, `${randomUUID()}.pid`);
    writeFileSync(pidFile, `${busy.pid}\n`);
    const { sample, used } = await sampleWithTruth(sampler({ main: { pidFile } }), busy.pid);

    expect(sample.main.processes).toBe(1);
    expect(Math.abs(core(sample, BUSY_CPU).main - used)).toBeLessThan(CLOSE);
  });

  it("reports no main application while its pid file is missing", async () => {
    const sample = await sampleOverASecond(sampler({ main: { pidFile: join(scratch, "missing.pid") } }));

    expect(sample.main).toEqual({ processes: 0, cpu: 0 });
    for (const c of sample.cores) expect(c.main).toBe(0);
    expect(sample.memory.mainBytes).toBe(0);
  });

  it("finds the main application by a command-line pattern", async () => {
    const marker = `odop-app-${randomUUID()}`;
    const busy = children.busy(BUSY_CPU, marker);
    const { sample, used } = await sampleWithTruth(sampler({ main: { command: `echo ${marker}$` } }), busy.pid);

    expect(sample.main.processes).toBe(1);
    expect(Math.abs(core(sample, BUSY_CPU).main - used)).toBeLessThan(CLOSE);
  });

  it("rejects an invalid command pattern with a message that names it", async () => {
    await expect(sampler({ main: { command: "(unclosed" } }).sample()).rejects.toThrow(/main\.command.*\(unclosed/);
  });

  it("skips processes that vanish, between samples or before the first", async () => {
    const busy = children.busy(BUSY_CPU);
    const gone = await deadPid();
    const s = sampler({ main: { pids: [busy.pid, gone] }, odop: [gone] });
    const first = await s.sample();
    expect(first.main.processes).toBe(1);
    await children.killAll();
    await sleep(200);
    const second = await s.sample();
    expect(NodeSample.parse(second)).toEqual(second);
    expect(second.main).toEqual({ processes: 0, cpu: 0 });
  });

  it("stays within bounds while processes start and end all the time", async () => {
    // A shell that forks a short-lived child in a loop: threads appear and vanish between
    // samples; only those seen twice count, so shares never spike past the cores.
    const forker = children.spawn("sh", ["-c", "while :; do /bin/true; done"]);
    const s = sampler({ main: { pids: [forker.pid] } });
    await s.sample();
    for (let i = 0; i < 3; i++) {
      await sleep(300);
      const sample = await s.sample();
      expect(NodeSample.parse(sample)).toEqual(sample);
      expect(sample.main.cpu).toBeLessThanOrEqual(sample.cores.length + 0.05);
      for (const c of sample.cores) expect(c.main).toBeLessThanOrEqual(c.total);
    }
  });

  it("labels the interval from the cores' ticks when the injected clock stands still", async () => {
    const s = new Sampler({ node: "node-a", main: () => undefined, odopRoots: () => [], now: () => 1_000_000 });
    await s.sample();
    await sleep(300);
    const sample = await s.sample();
    expect(NodeSample.parse(sample)).toEqual(sample);
    expect(sample.time).toBe(1_000_000);
    expect(sample.intervalMs).toBeGreaterThan(100);
  });

  it("shares one measurement between concurrent calls", async () => {
    const s = sampler({});
    const [a, b] = await Promise.all([s.sample(), s.sample()]);
    expect(a).toBe(b);
    expect(NodeSample.parse(a)).toEqual(a);
  });
});
