// The freezer API: the container lookup on fake kubelet cgroup trees, then freeze and thaw
// for real (a cgroup v2 tree made for the test, real processes, the controller's real
// client from src/backends/kubernetes/agent-client.ts) where the machine allows it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type CgroupView, LookupError, containerStage, findContainerDirectory, findPodDirectory, isPodDirectory, procView } from "../../src/agent/pod-cgroup.ts";
import { type FreezerServer, startFreezerServer, tokenMatches } from "../../src/agent/freezer-server.ts";
import type { AgentLog } from "../../src/agent/pusher.ts";
import { readProcStat } from "../../src/agent/procfs.ts";
import { AgentError, httpAgentClient } from "../../src/backends/kubernetes/agent-client.ts";
import { cgroupsUnavailable, makeCgroup, moveInto, removeCgroup, scratchCgroup } from "./cgroups.ts";
import { BUSY_LOOP, Children, sleep, until } from "./processes.ts";

const children = new Children();
const scratch = mkdtempSync(join(tmpdir(), "odop-freezer-"));
const cgroups: string[] = [];
const servers: FreezerServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await children.killAll();
  for (const dir of cgroups.splice(0)) await removeCgroup(dir);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const UID = "0f3c3b52-5a55-4a36-9d8f-2bd1a7d4a2a1";
const UID_ = UID.replaceAll("-", "_");

interface FakeProcess {
  env: Record<string, string>;
  cmdline: string;
}

/** A fake cgroup tree (real directories) whose processes are described in memory. */
function fakeTree(containers: Record<string, FakeProcess[]>, podPath: string): { root: string; view: CgroupView; pod: string } {
  const root = mkdtempSync(join(scratch, "tree-"));
  const pod = join(root, podPath);
  const procs = new Map<string, number[]>();
  const processes = new Map<number, FakeProcess>();
  let pid = 100;
  mkdirSync(join(root, "system.slice/kubelet.service"), { recursive: true });
  for (const [name, list] of Object.entries(containers)) {
    mkdirSync(join(pod, name), { recursive: true });
    procs.set(join(pod, name), list.map((p) => (processes.set(++pid, p), pid)));
  }
  const view: CgroupView = {
    list: (dir) => procView.list(dir),
    procs: (dir) => procs.get(dir) ?? [],
    env: (p, name) => processes.get(p)?.env[name],
    cmdline: (p) => processes.get(p)?.cmdline,
  };
  return { root, view, pod };
}

const pause: FakeProcess = { env: { PATH: "/bin" }, cmdline: "/pause" };
const stage = (name: string): FakeProcess => ({ env: { ODOP_EXECUTION: "copy-1" }, cmdline: `odop stage /odop/stage/${name}.json` });
const run: FakeProcess = { env: { ODOP_EXECUTION: "copy-1" }, cmdline: "python3 train.py --epochs 3" };

describe("the container lookup", () => {
  it("recognises pod cgroups of both drivers", () => {
    expect(isPodDirectory(`pod${UID}`, UID)).toBe(true);
    expect(isPodDirectory(`kubepods-besteffort-pod${UID_}.slice`, UID)).toBe(true);
    expect(isPodDirectory(`kubepods-pod${UID_}.slice`, UID)).toBe(true);
    expect(isPodDirectory(`pod${UID}x`, UID)).toBe(false);
    expect(isPodDirectory(`kubepods-besteffort-pod${UID}.slice`, UID)).toBe(false);
  });

  it("finds the pod in the systemd, cgroupfs and kind layouts, Guaranteed ones too", () => {
    for (const podPath of [
      `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
      `kubepods.slice/kubepods-pod${UID_}.slice`,
      `kubepods/besteffort/pod${UID}`,
      `kubepods/pod${UID}`,
      `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice`,
    ]) {
      const { root, view, pod } = fakeTree({ "cri-containerd-aaa.scope": [run] }, podPath);
      expect(findPodDirectory([root], UID, view)).toBe(pod);
      expect(findPodDirectory([root], "11111111-2222-3333-4444-555555555555", view)).toBeUndefined();
    }
  });

  it("tells odop's stage containers apart by their processes, never the sandbox", () => {
    const { root, view, pod } = fakeTree(
      { "cri-containerd-p.scope": [pause], "cri-containerd-c.scope": [stage("configure")], "cri-containerd-r.scope": [run, run] },
      `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`,
    );
    expect(containerStage(join(pod, "cri-containerd-p.scope"), view)).toBeUndefined();
    expect(findContainerDirectory([root], UID, "run", view)).toBe(join(pod, "cri-containerd-r.scope"));
    expect(findContainerDirectory([root], UID, "configure", view)).toBe(join(pod, "cri-containerd-c.scope"));
    expect(() => findContainerDirectory([root], UID, "publish", view)).toThrow(/no running container publish/);
    expect(() => findContainerDirectory([root], "11111111-2222-3333-4444-555555555555", "run", view)).toThrow(LookupError);
  });

  it("lets ODOP_STAGE name a container, and refuses to guess between two", () => {
    const named = fakeTree(
      { a: [{ env: { ODOP_EXECUTION: "x", ODOP_STAGE: "run" }, cmdline: "odop stage /odop/stage/publish.json" }], b: [pause] },
      `kubepods/pod${UID}`,
    );
    expect(findContainerDirectory([named.root], UID, "run", named.view)).toBe(join(named.pod, "a"));
    const twice = fakeTree({ a: [run], b: [run] }, `kubepods/pod${UID}`);
    try {
      findContainerDirectory([twice.root], UID, "run", twice.view);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(LookupError);
      expect((error as LookupError).status).toBe(409);
    }
  });

  it("compares tokens", () => {
    expect(tokenMatches("Bearer abc", "abc")).toBe(true);
    expect(tokenMatches("bearer abc", "abc")).toBe(true);
    expect(tokenMatches("Bearer abd", "abc")).toBe(false);
    expect(tokenMatches("Bearer ab", "abc")).toBe(false);
    expect(tokenMatches(undefined, "abc")).toBe(false);
    expect(tokenMatches("Bearer ", "")).toBe(false);
  });
});

function logger(): AgentLog & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_: unknown, msg?: string) => lines.push({ level, msg: msg ?? "" });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const why = cgroupsUnavailable();
if (why !== undefined) console.warn(`SKIPPED: real freeze/thaw tests: ${why}`);

describe.skipIf(why !== undefined)("freeze and thaw for real", () => {
  it("freezes and thaws a stage container through the controller's own client", async () => {
    const cgroup = scratchCgroup();
    if (!("dir" in cgroup)) throw new Error(cgroup.why);
    cgroups.push(cgroup.dir);
    const pod = join(cgroup.dir, "kubepods/besteffort", `pod${UID}`);
    const runDir = makeCgroup(join(pod, "c0ffee"));
    const pauseDir = makeCgroup(join(pod, "5a4db0x"));
    const busy = children.spawn("sh", ["-c", BUSY_LOOP], { ODOP_EXECUTION: "copy-1" });
    const sandbox = children.spawn("sleep", ["60"]);
    await until(() => procView.env(busy.pid, "ODOP_EXECUTION") === "copy-1", "the exec");
    moveInto(runDir, busy.pid);
    moveInto(pauseDir, sandbox.pid);

    const log = logger();
    const server = await startFreezerServer({ host: "127.0.0.1", port: 0, token: () => "agent-token", cgroupRoots: [cgroup.dir], log });
    servers.push(server);
    const url = () => `http://127.0.0.1:${server.address.port}`;
    const client = httpAgentClient({ url, token: "agent-token" });

    await client.freeze("node-a", UID, "run");
    expect(readFileSync(join(runDir, "cgroup.events"), "latin1")).toMatch(/^frozen 1$/m);
    expect(readFileSync(join(pauseDir, "cgroup.events"), "latin1")).toMatch(/^frozen 0$/m);
    const frozenAt = readProcStat(busy.pid)?.cpuTicks;
    await sleep(300);
    expect(readProcStat(busy.pid)?.cpuTicks).toBe(frozenAt); // a frozen busy loop uses no CPU
    await client.freeze("node-a", UID, "run"); // again: no error

    await client.thaw("node-a", UID, "run", "0");
    expect(readFileSync(join(runDir, "cgroup.events"), "latin1")).toMatch(/^frozen 0$/m);
    await until(() => (readProcStat(busy.pid)?.cpuTicks ?? 0) > (frozenAt ?? 0), "the loop to run again");
    // This test cgroup has no cpuset controller: thawed on its cores, and the log says why.
    expect(log.lines.some((l) => l.level === "warn" && l.msg.includes("no cpuset controller"))).toBe(true);

    const wrong = httpAgentClient({ url, token: "not-it" });
    await expect(wrong.freeze("node-a", UID, "run")).rejects.toMatchObject({ status: 401 });
    await expect(client.freeze("node-a", "11111111-2222-3333-4444-555555555555", "run")).rejects.toMatchObject({ status: 404 });
    await expect(client.freeze("node-a", UID, "publish")).rejects.toBeInstanceOf(AgentError);
    const bad = await fetch(`${url()}/v1/freeze`, {
      method: "POST",
      headers: { authorization: "Bearer agent-token", "content-type": "application/json" },
      body: JSON.stringify({ pod: "../../etc", container: "run" }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^pod: /);
  });
});
