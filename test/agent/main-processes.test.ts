// How the agent finds the main application and odop's processes: the pure parts on fake
// trees, the /proc and cgroup parts against real child processes.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { EnvScanner, environHas, processEnvHas, processEnvValue } from "../../src/agent/environ.ts";
import { MainProcesses, findDirectory, kubepodsSearch, slurmJobSearch } from "../../src/agent/main-processes.ts";
import { Sampler } from "../../src/agent/sampler.ts";
import { cgroupsUnavailable, makeCgroup, moveInto, removeCgroup, scratchCgroup } from "./cgroups.ts";
import { Children, until } from "./processes.ts";

const children = new Children();
const scratch = mkdtempSync(join(tmpdir(), "odop-main-"));
const cgroups: string[] = [];
afterEach(async () => {
  await children.killAll();
  for (const dir of cgroups.splice(0)) await removeCgroup(dir);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const env = (...entries: string[]) => Buffer.from(entries.map((e) => `${e}\0`).join(""));

describe("environHas", () => {
  it("matches whole entries only", () => {
    const block = env("PATH=/bin", "XSLURM_JOB_ID=4242", "SLURM_JOB_ID=42420", "HOME=/SLURM_JOB_ID=4242");
    expect(environHas(block, block.length, { name: "SLURM_JOB_ID", value: "4242" })).toBe(false);
    expect(environHas(block, block.length, { name: "SLURM_JOB_ID", value: "42420" })).toBe(true);
    expect(environHas(block, block.length, { name: "SLURM_JOB_ID" })).toBe(true);
    expect(environHas(block, block.length, { name: "ODOP_EXECUTION" })).toBe(false);
  });

  it("matches the first entry, and a last one without its NUL", () => {
    const block = Buffer.from("ODOP_EXECUTION=e-1\0SLURM_JOB_ID=7");
    expect(environHas(block, block.length, { name: "ODOP_EXECUTION" })).toBe(true);
    expect(environHas(block, block.length, { name: "SLURM_JOB_ID", value: "7" })).toBe(true);
    expect(environHas(block, block.length - 1, { name: "SLURM_JOB_ID", value: "7" })).toBe(false);
  });
});

describe("findDirectory", () => {
  function tree(paths: string[]): string {
    const root = mkdtempSync(join(scratch, "tree-"));
    for (const p of paths) mkdirSync(join(root, p), { recursive: true });
    return root;
  }

  it("finds a Slurm job's cgroup in the v2 and v1 layouts", () => {
    const v2 = tree(["system.slice/ssh.service", "system.slice/slurmstepd.scope/job_4242/step_0/user/task_0", "system.slice/slurmstepd.scope/job_77"]);
    const v1 = tree(["slurm/uid_1000/job_4242/step_batch"]);
    const { match, limits } = slurmJobSearch(4242);
    expect(findDirectory([v2], match, limits)).toBe(join(v2, "system.slice/slurmstepd.scope/job_4242"));
    expect(findDirectory([v1], match, limits)).toBe(join(v1, "slurm/uid_1000/job_4242"));
    expect(findDirectory([tree(["system.slice"]), v1], match, limits)).toBe(join(v1, "slurm/uid_1000/job_4242"));
    expect(findDirectory([v2], slurmJobSearch(5).match, limits)).toBeUndefined();
  });

  it("finds the kubelet's pod cgroups in the systemd, cgroupfs and kind layouts", () => {
    const { match, limits } = kubepodsSearch();
    const systemd = tree(["kubepods.slice/kubepods-besteffort.slice", "system.slice/kubelet.service"]);
    const cgroupfs = tree(["kubepods/burstable"]);
    const kind = tree(["kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice"]);
    expect(findDirectory([systemd], match, limits)).toBe(join(systemd, "kubepods.slice"));
    expect(findDirectory([cgroupfs], match, limits)).toBe(join(cgroupfs, "kubepods"));
    expect(findDirectory([kind], match, limits)).toBe(join(kind, "kubelet.slice/kubelet-kubepods.slice"));
  });

  it("stops at its limits", () => {
    const deep = tree(["a/b/c/d/e/f/job_1"]);
    expect(findDirectory([deep], (n) => n === "job_1", { maxDepth: 5, maxVisits: 100 })).toBeUndefined();
    expect(findDirectory([deep], (n) => n === "job_1", { maxDepth: 7, maxVisits: 3 })).toBeUndefined();
    expect(findDirectory([deep], (n) => n === "job_1", { maxDepth: 7, maxVisits: 100 })).toBe(join(deep, "a/b/c/d/e/f/job_1"));
  });
});

describe("processes by environment", () => {
  it("reads a real process's environment", async () => {
    const child = children.spawn("sleep", ["30"], { SLURM_JOB_ID: "4242", ODOP_EXECUTION: "copy-1" });
    await until(() => processEnvValue(child.pid, "SLURM_JOB_ID") === "4242", "the exec");
    expect(processEnvValue(child.pid, "ODOP_EXECUTION")).toBe("copy-1");
    expect(processEnvHas(child.pid, [{ name: "SLURM_JOB_ID", value: "424" }, { name: "ODOP_EXECUTION" }])).toEqual([false, true]);
    expect(processEnvValue(child.pid, "NOT_THERE_SURELY")).toBeUndefined();
  });

  it("EnvScanner finds processes by variable, new ones at once, gone ones no more", async () => {
    const id = String(100_000 + Math.floor(Math.random() * 100_000));
    const scanner = new EnvScanner([{ name: "SLURM_JOB_ID", value: id }, { name: "ODOP_TEST_MARK", value: id }], { fullScanEvery: 1000 });
    expect(scanner.scan()).toEqual([[], []]);
    const job = children.spawn("sleep", ["30"], { SLURM_JOB_ID: id });
    const marked = children.spawn("sleep", ["30"], { ODOP_TEST_MARK: id });
    await until(() => processEnvValue(marked.pid, "ODOP_TEST_MARK") === id && processEnvValue(job.pid, "SLURM_JOB_ID") === id, "the execs");
    expect(scanner.scan()).toEqual([[job.pid], [marked.pid]]);
    await children.killAll();
    expect(scanner.scan()).toEqual([[], []]);
  });
});

describe("MainProcesses", () => {
  it("with no option, measures the whole node: no selector", () => {
    const main = new MainProcesses({});
    expect(main.configured).toBe(false);
    expect(main.main()).toBeUndefined();
  });

  it("finds a Slurm job's processes by SLURM_JOB_ID where it has no cgroup (proctrack/linuxproc)", async () => {
    const id = 4242;
    const main = new MainProcesses({ slurmJob: id }, { cgroupRoots: [mkdtempSync(join(scratch, "empty-"))] });
    const task = children.spawn("sleep", ["30"], { SLURM_JOB_ID: String(id) });
    const odop = children.spawn("sleep", ["30"], { ODOP_EXECUTION: "copy-1", SLURM_JOB_ID: "99" });
    await until(() => processEnvValue(task.pid, "SLURM_JOB_ID") === "4242" && processEnvValue(odop.pid, "ODOP_EXECUTION") === "copy-1", "the execs");
    const selector = main.main();
    expect(selector?.pids).toContain(task.pid);
    expect(selector?.pids).not.toContain(odop.pid);
    expect(main.odopRoots()).toContain(odop.pid);
    expect(main.odopRoots()).not.toContain(task.pid);

    // And through the sampler: the job is the main application, the other one odop's.
    const sampler = new Sampler({ node: "n", main: main.main, odopRoots: main.odopRoots, warmupMs: 10 });
    const sample = await sampler.sample();
    expect(sample.main.processes).toBeGreaterThanOrEqual(1);
  });

  it("passes the explicit selectors through, and finds nothing rather than everything", () => {
    const main = new MainProcesses({ pidFile: "/run/app.pid", command: "^simulation", cgroup: "/system.slice/app.service" });
    expect(main.main()).toEqual({ pids: [], pidFile: "/run/app.pid", command: "^simulation", cgroup: "/system.slice/app.service" });
    const pods = new MainProcesses({ kubernetesPods: true }, { cgroupRoots: [mkdtempSync(join(scratch, "empty-"))] });
    expect(pods.main()).toEqual({ pids: [] });
  });

  const why = cgroupsUnavailable();
  if (why !== undefined) console.warn(`SKIPPED: Slurm job cgroup test: ${why}`);

  it.skipIf(why !== undefined)("finds a Slurm job's processes in its cgroup v2 (slurmstepd.scope/job_<id>)", () => {
    const cgroup = scratchCgroup();
    if (!("dir" in cgroup)) throw new Error(cgroup.why);
    cgroups.push(cgroup.dir);
    const step = makeCgroup(join(cgroup.dir, "system.slice/slurmstepd.scope", `job_4243/step_0/user/task_0`));
    const other = makeCgroup(join(cgroup.dir, "system.slice/slurmstepd.scope/job_9999/step_0"));
    const task = children.spawn("sleep", ["30"]);
    const stranger = children.spawn("sleep", ["30"]);
    moveInto(step, task.pid);
    moveInto(other, stranger.pid);
    const main = new MainProcesses({ slurmJob: 4243 }, { cgroupRoots: [cgroup.dir] });
    expect(main.main()).toEqual({ pids: [task.pid] });
    expect(main.directory("slurm")).toBe(join(cgroup.dir, "system.slice/slurmstepd.scope/job_4243"));
  });
});
