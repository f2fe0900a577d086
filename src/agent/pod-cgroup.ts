/**
 * A stage container's cgroup v2 directory on this node, from its pod uid and container
 * name, and freezing, thawing and re-pinning it (for freezer-server.ts).
 *
 * The pod: the kubelet names pod cgroups after the pod uid, under its kubepods cgroup:
 *   systemd driver  kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice
 *                   (Guaranteed pods: kubepods.slice/kubepods-pod<uid with _>.slice)
 *   cgroupfs driver kubepods/<qos>/pod<uid>   (Guaranteed: kubepods/pod<uid>)
 *   kind            kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-<qos>.slice/...
 * so the pod directory is the one below a kubepods directory whose name ends in
 * `pod<uid>` or `pod<uid with _>.slice`.
 *
 * The container: its directory (cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope
 * or <id>) is named after the runtime's container id, and only the CRI maps names to ids.
 * Rather than talk to the CRI socket, the agent tells odop's stage containers apart by
 * their processes, which it reads anyway:
 * 1. a process with ODOP_STAGE=<name> in its environment belongs to container <name> (for
 *    a backend that sets it: exact, and the rule that wins);
 * 2. otherwise a container whose processes carry ODOP_EXECUTION is odop's (pod-spec.ts gives
 *    it to every stage): the one whose command line is `... stage /odop/stage/<s>.json` is
 *    container <s> (configure, publish), any other is `run` (the only stage that runs the
 *    user's command);
 * 3. a container with neither (the sandbox's pause process, a sidecar) is never touched.
 * Two live containers claiming the asked name is an error (409), never a guess.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processEnvValue } from "./environ.ts";
import { findDirectory, kubepodsSearch, listDirs } from "./main-processes.ts";
import { readCommandLine } from "./procfs.ts";

/** What the lookup reads: directory listings, cgroup.procs, and processes' environment and command line. */
export interface CgroupView {
  /** Subdirectory names of `dir`; [] when it cannot be read. */
  list(dir: string): string[];
  /** Pids in `dir`/cgroup.procs; [] when it cannot be read. */
  procs(dir: string): number[];
  /** The value of `name` in the environment of `pid`; undefined when absent or gone. */
  env(pid: number, name: string): string | undefined;
  /** Command line, arguments joined with spaces; undefined when gone. */
  cmdline(pid: number): string | undefined;
}

export const procView: CgroupView = {
  list: listDirs,
  procs(dir) {
    try {
      return readFileSync(join(dir, "cgroup.procs"), "latin1").split("\n").filter((w) => w !== "").map(Number);
    } catch {
      return [];
    }
  },
  env: processEnvValue,
  cmdline: readCommandLine,
};

export class LookupError extends Error {
  override name = "LookupError";
  readonly status: 404 | 409;
  constructor(status: 404 | 409, message: string) {
    super(message);
    this.status = status;
  }
}

/** Whether directory `name` is the cgroup of the pod with uid `uid` (either driver). */
export function isPodDirectory(name: string, uid: string): boolean {
  return name === `pod${uid}` || name.endsWith(`pod${uid.replaceAll("-", "_")}.slice`);
}

/** The pod's cgroup directory under `roots` (cgroup v2 mounts); undefined when the pod has none here. */
export function findPodDirectory(roots: readonly string[], uid: string, view: CgroupView = procView): string | undefined {
  const kube = kubepodsSearch();
  const kubepods = findDirectory(roots, kube.match, kube.limits, (d) => view.list(d));
  if (kubepods === undefined) return undefined;
  return findDirectory([kubepods], (n) => isPodDirectory(n, uid), { maxDepth: 2, maxVisits: 64 }, (d) => view.list(d));
}

const STAGE_COMMAND = /\sstage\s+\/odop\/stage\/([a-z0-9-]+)\.json$/;
/** Processes read per container to classify it. */
const PROCESSES_READ = 16;

/** The stage container name of the container whose cgroup is `dir`; undefined when it is not odop's or has no process. */
export function containerStage(dir: string, view: CgroupView = procView): string | undefined {
  const pids = collectPids(dir, view).slice(0, PROCESSES_READ);
  let odop = false;
  let stage: string | undefined;
  for (const pid of pids) {
    const named = view.env(pid, "ODOP_STAGE");
    if (named !== undefined && named !== "") return named;
    if (view.env(pid, "ODOP_EXECUTION") === undefined) continue;
    odop = true;
    stage ??= STAGE_COMMAND.exec(view.cmdline(pid) ?? "")?.[1];
  }
  return odop ? (stage ?? "run") : undefined;
}

function collectPids(dir: string, view: CgroupView): number[] {
  const pids = [...view.procs(dir)];
  for (const sub of view.list(dir)) pids.push(...collectPids(join(dir, sub), view));
  return pids.sort((a, b) => a - b);
}

/**
 * The cgroup directory of `container` in pod `uid`. Throws LookupError 404 when the pod or
 * no such live container is on this node, 409 when two containers claim the name.
 */
export function findContainerDirectory(roots: readonly string[], uid: string, container: string, view: CgroupView = procView): string {
  const pod = findPodDirectory(roots, uid, view);
  if (pod === undefined) throw new LookupError(404, `pod ${uid} has no cgroup on this node`);
  const matches = view.list(pod).filter((name) => containerStage(join(pod, name), view) === container);
  if (matches.length === 0) throw new LookupError(404, `pod ${uid} has no running container ${container} of odop on this node`);
  if (matches.length > 1) throw new LookupError(409, `pod ${uid} has ${matches.length} running containers that look like ${container}: ${matches.join(", ")}`);
  return join(pod, matches[0] ?? "");
}

// ---------------------------------------------------------------------------------------
// Freezing

/** What cgroup.events says about `frozen` (true, false; undefined when the file cannot be read). */
export function readFrozen(dir: string): boolean | undefined {
  try {
    const value = /^frozen (\d)$/m.exec(readFileSync(join(dir, "cgroup.events"), "latin1"))?.[1];
    return value === undefined ? undefined : value === "1";
  } catch {
    return undefined;
  }
}

/**
 * Writes cgroup.freeze and waits until cgroup.events agrees, polling every 10 ms for at most
 * `timeoutMs` (a task in uninterruptible sleep delays freezing). Rejects on a write error or
 * when the state is not reached in time.
 */
export async function setFrozen(dir: string, frozen: boolean, timeoutMs: number): Promise<void> {
  writeFileSync(join(dir, "cgroup.freeze"), frozen ? "1" : "0");
  for (let waited = 0; readFrozen(dir) !== frozen; waited += 10) {
    if (waited >= timeoutMs) throw new Error(`cgroup ${dir} is not ${frozen ? "frozen" : "thawed"} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Whether the cpuset controller is enabled on `dir` (its parent delegates it). */
export function hasCpusetController(dir: string): boolean {
  try {
    return readFileSync(join(dir, "cgroup.controllers"), "latin1").split(/\s+/).includes("cpuset");
  } catch {
    return false;
  }
}

/**
 * Whether the kubelet's static CPU manager pins this container (its state file lists the pod
 * and container): then the kubelet owns the cpuset and would put its own back.
 */
export function cpuManagerOwns(statePath: string, uid: string, container: string): boolean {
  try {
    const state = JSON.parse(readFileSync(statePath, "utf8")) as { policyName?: unknown; entries?: Record<string, Record<string, unknown>> };
    return state.policyName === "static" && state.entries?.[uid]?.[container] !== undefined;
  } catch {
    return false;
  }
}
