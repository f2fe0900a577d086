// Real cgroup v2 directories for the agent tests, where the machine lets us make them
// (root, a writable cgroup2 mount). Tests that need them skip, visibly, elsewhere.
import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cgroupMounts } from "../../src/agent/cgroup.ts";
import { until } from "./processes.ts";

/** A fresh directory under the cgroup v2 mount, or why there can be none. */
export function scratchCgroup(): { dir: string } | { why: string } {
  const v2 = cgroupMounts().find((m) => m.version === 2);
  if (v2 === undefined) return { why: "no cgroup v2 mount" };
  if (process.getuid?.() !== 0) return { why: "not root" };
  const dir = join(v2.path, `odop-test-${randomUUID().slice(0, 8)}`);
  try {
    mkdirSync(dir);
    return { dir };
  } catch (error) {
    return { why: `cannot create a cgroup: ${(error as Error).message}` };
  }
}

/** Why this machine cannot give the tests cgroups; undefined when it can (probed once, left clean). */
export function cgroupsUnavailable(): string | undefined {
  const probe = scratchCgroup();
  if (!("dir" in probe)) return probe.why;
  rmdirSync(probe.dir);
  return undefined;
}

export function makeCgroup(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function moveInto(dir: string, pid: number): void {
  writeFileSync(join(dir, "cgroup.procs"), String(pid));
}

/** Removes a cgroup tree (rmdir, deepest first) once its processes are gone; a frozen one is thawed first. */
export async function removeCgroup(dir: string): Promise<void> {
  let subdirs: string[];
  try {
    subdirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return;
  }
  for (const sub of subdirs) await removeCgroup(join(dir, sub));
  try {
    writeFileSync(join(dir, "cgroup.freeze"), "0");
  } catch {
    // not a freezable cgroup (the root)
  }
  await until(() => readFileSync(join(dir, "cgroup.procs"), "latin1").trim() === "", `${dir} to empty`);
  rmdirSync(dir);
}
