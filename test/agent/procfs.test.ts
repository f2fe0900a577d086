import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  childrenMap,
  clockTicksPerSecond,
  descendants,
  findByCommand,
  listThreads,
  pageSize,
  parseProcStat,
  pidsInCgroup,
  processRss,
  readCpuTimes,
  readMemoryInfo,
  readPidFile,
  readProcStat,
  walkProcessTree,
} from "../../src/agent/procfs.ts";
import { Children, deadPid, onlineCpus, until } from "./processes.ts";

const children = new Children();
const scratch = mkdtempSync(join(tmpdir(), "odop-procfs-"));
afterEach(() => children.killAll());
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// A stat line whose comm holds a space and both parentheses; fields from proc(5).
const TRICKY_STAT =
  "4242 ((a) b)) S 17 4242 4242 0 -1 4194560 100 0 0 0 120 30 0 0 20 0 3 0 98765 1000000 250 " +
  "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

describe("parseProcStat", () => {
  it("splits at the last ')' when comm holds spaces and parentheses", () => {
    expect(parseProcStat(TRICKY_STAT)).toEqual({
      pid: 4242,
      comm: "(a) b)",
      state: "S",
      ppid: 17,
      cpuTicks: 150,
      startTicks: 98765,
      processor: 1,
    });
  });

  it("keeps a comm that looks like more fields", () => {
    const stat = parseProcStat(TRICKY_STAT.replace("((a) b))", "(x) R 1 2 3 (y)"));
    expect(stat?.comm).toBe("x) R 1 2 3 (y");
    expect(stat?.ppid).toBe(17);
  });

  it.each(["", "4242 (sh S 1 2", "4242 (sh) S 1 2 3"])("refuses truncated %j", (text) => {
    expect(parseProcStat(text)).toBeUndefined();
  });

  it("reads a real process whose comm is `(a) b)`", async () => {
    const link = join(scratch, "(a) b)");
    symlinkSync("/bin/sleep", link);
    const child = children.spawn(link, ["30"]);
    await until(() => readProcStat(child.pid)?.comm === "(a) b)", "the exec of `(a) b)`");
    const stat = readProcStat(child.pid);
    expect(stat).toMatchObject({ pid: child.pid, comm: "(a) b)", ppid: process.pid });
    expect(stat?.state).toMatch(/^[RSD]$/);
    expect(stat?.processor).toBeGreaterThanOrEqual(0);
  });
});

describe("process readers", () => {
  it("read this process", () => {
    const self = readProcStat(process.pid);
    expect(self?.pid).toBe(process.pid);
    expect(self?.ppid).toBe(process.ppid);
    expect(onlineCpus()).toContain(self?.processor);
    const threads = listThreads(process.pid);
    expect(threads.map((t) => t.tid)).toContain(process.pid);
    for (const thread of threads) {
      expect(thread.cpuTicks).toBeGreaterThanOrEqual(0);
      expect(onlineCpus()).toContain(thread.processor);
    }
    // Node's RSS counts the same pages, give or take what changed between the two reads.
    const rss = processRss(process.pid) ?? 0;
    expect(rss).toBeGreaterThan(process.memoryUsage.rss() / 2);
    expect(rss).toBeLessThan(process.memoryUsage.rss() * 2);
  });

  it("skip a process that is gone, silently", async () => {
    const pid = await deadPid();
    expect(readProcStat(pid)).toBeUndefined();
    expect(listThreads(pid)).toEqual([]);
    expect(processRss(pid)).toBeUndefined();
    expect(descendants([pid])).toEqual([]);
    expect(walkProcessTree([pid, process.pid], { onThread: () => undefined })).toEqual([process.pid]);
  });

  it("know the system constants", () => {
    expect([4096, 16_384, 65_536]).toContain(pageSize());
    expect(clockTicksPerSecond()).toBe(100);
  });

  it("read every online CPU from /proc/stat", () => {
    const times = readCpuTimes();
    expect(times.ids).toEqual(onlineCpus());
    for (let i = 0; i < times.ids.length; i++) {
      expect(times.busy[i]).toBeLessThanOrEqual(times.total[i] ?? 0);
      expect(times.total[i]).toBeGreaterThan(0);
    }
  });

  it("read memory", () => {
    const memory = readMemoryInfo();
    expect(memory.totalBytes).toBeGreaterThan(64 * 1024 * 1024);
    expect(memory.availableBytes).toBeGreaterThan(0);
    expect(memory.availableBytes).toBeLessThanOrEqual(memory.totalBytes);
  });
});

describe("process trees", () => {
  it("find a shell's children and grandchildren, roots included", async () => {
    const shell = children.spawn("sh", ["-c", "sh -c 'sleep 30 & wait' & sleep 30 & wait"]);
    await until(() => descendants([shell.pid]).length === 4, "two shells and two sleeps");
    const tree = descendants([shell.pid]);
    expect(tree[0]).toBe(shell.pid);
    expect(new Set(tree.map((pid) => readProcStat(pid)?.comm))).toEqual(new Set(["sh", "sleep"]));
    const byNumber = (a: number, b: number): number => a - b;
    expect(walkProcessTree([shell.pid], { scan: true }).sort(byNumber)).toEqual([...tree].sort(byNumber));
    const map = childrenMap();
    expect(map.get(process.pid)).toContain(shell.pid);
    expect(map.get(shell.pid)?.length).toBe(2);
  });

  it("stop at excluded processes", async () => {
    const shell = children.spawn("sh", ["-c", "sh -c 'sleep 30 & wait' & wait"]);
    await until(() => descendants([shell.pid]).length === 3, "a shell, its shell and a sleep");
    const inner = descendants([shell.pid])[1] ?? 0;
    expect(walkProcessTree([shell.pid], { exclude: new Set([inner]) })).toEqual([shell.pid]);
  });
});

describe("selectors", () => {
  it("find processes by command line, never this one", async () => {
    const marker = `odop-marker-${randomUUID()}`;
    // Programs that never fork: a forked shell child carries the shell's command line until it execs.
    const wait = "setTimeout(() => {}, 30000)";
    const a = children.spawn(process.execPath, ["-e", wait, marker]);
    const b = children.spawn(process.execPath, ["-e", wait, `${marker}-two`]);
    await until(() => findByCommand(marker).length === 2, "both shells");
    expect(findByCommand(marker).sort()).toEqual([a.pid, b.pid].sort());
    expect(findByCommand(new RegExp(`${marker}-two$`, "g"))).toEqual([b.pid]);
    expect(findByCommand(new RegExp(`${marker}-two$`, "g"))).toEqual([b.pid]); // no lastIndex left over
    expect(findByCommand(".")).not.toContain(process.pid);
    const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(findByCommand(`^${escaped(`${process.execPath} -e ${wait} ${marker}`)}$`)).toEqual([a.pid]); // args joined with spaces
  });

  it("read pid files", async () => {
    const file = join(scratch, "app.pid");
    writeFileSync(file, "12345\n");
    expect(await readPidFile(file)).toBe(12_345);
    writeFileSync(file, "  678 extra words");
    expect(await readPidFile(file)).toBe(678);
    for (const garbage of ["", "abc", "-5", "0", "99999999", "12.5"]) {
      writeFileSync(file, garbage);
      expect(await readPidFile(file), garbage).toBeUndefined();
    }
    expect(await readPidFile(join(scratch, "missing.pid"))).toBeUndefined();
    expect(await readPidFile(join(file, "not-a-directory"))).toBeUndefined();
  });

  it("list the processes of the root cgroup and its sub-cgroups", () => {
    expect(pidsInCgroup("/")).toContain(process.pid);
    expect(pidsInCgroup(`/odop-no-such-cgroup-${randomUUID()}`)).toEqual([]);
    expect(pidsInCgroup("/../../../etc")).toEqual([]); // stays inside the hierarchy
  });

  // Creating cgroups needs root and a writable hierarchy: a CI runner usually has both, a
  // developer's laptop usually not (the test then shows as skipped).
  const hierarchies = [
    { version: "v2", root: "/sys/fs/cgroup", marker: "cgroup.controllers" },
    { version: "v2 (hybrid)", root: "/sys/fs/cgroup/unified", marker: "cgroup.controllers" },
    { version: "v1 (cpu)", root: "/sys/fs/cgroup/cpu", marker: "cpu.shares" },
  ].filter((h) => existsSync(join(h.root, h.marker)));
  const writable = (root: string): boolean => {
    const probe = join(root, `odop-probe-${process.pid}`);
    try {
      mkdirSync(probe);
      rmdirSync(probe);
      return true;
    } catch {
      return false;
    }
  };

  for (const { version, root } of hierarchies) {
    it.skipIf(!writable(root))(`list the processes of a ${version} cgroup and its sub-cgroups`, async () => {
      const name = `odop-test-${randomUUID()}`;
      const group = join(root, name);
      const sub = join(group, "step_0");
      mkdirSync(sub, { recursive: true });
      try {
        const a = children.spawn("sleep", ["30"]);
        const b = children.spawn("sleep", ["30"]);
        writeFileSync(join(group, "cgroup.procs"), String(a.pid));
        writeFileSync(join(sub, "cgroup.procs"), String(b.pid));
        const both = [a.pid, b.pid].sort((x, y) => x - y);
        expect(pidsInCgroup(group)).toEqual(both); // a filesystem path
        expect(pidsInCgroup(`/${name}`)).toEqual(both); // a cgroup path, found in its hierarchy
        expect(pidsInCgroup(name)).toEqual(both);
        expect(pidsInCgroup(sub)).toEqual([b.pid]);
      } finally {
        await children.killAll();
        await until(() => {
          try {
            rmdirSync(sub);
            rmdirSync(group);
            return true;
          } catch {
            return false;
          }
        }, "the test cgroups to empty");
      }
    });
  }
});
