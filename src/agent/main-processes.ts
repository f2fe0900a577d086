/**
 * How `odop agent` recognises the main application's processes and odop's own, as the
 * Sampler's `main` and `odopRoots` (sampler.ts).
 *
 * Main application, by option (several add up, as MainSelector fields do; none: the whole
 * node except odop's work):
 * - `slurmJob: <id>`: the processes of that Slurm job. With a cgroup proctrack/task plugin
 *   they are in a cgroup named `job_<id>` (v2: /sys/fs/cgroup/system.slice/
 *   slurmstepd.scope/job_<id>/step_*, v1: /sys/fs/cgroup/<controller>/slurm/uid_<uid>/job_<id>);
 *   the whole job cgroup counts, slurmstepd included (the job's own overhead). The
 *   directory is found by a bounded search of the cgroup mounts (v2 first) and remembered;
 *   while it is missing the search runs again at most every `searchEvery` samples. Where
 *   there is none (proctrack/linuxproc makes no cgroups, or the job has not started), the
 *   processes whose environment holds SLURM_JOB_ID=<id> count (environ.ts).
 * - `kubernetesPods: true`: every process in the kubelet's pod cgroups (`kubepods.slice`,
 *   `kubepods`, or kind's `kubelet.slice/kubelet-kubepods.slice`). odop's stage containers
 *   are told apart by their environment, not their cgroup: the agent cannot see pod labels
 *   from /proc, and every stage odop starts carries ODOP_EXECUTION (pod-spec.ts), so they
 *   are odop's (below) and the sampler takes odop's processes out of the main application.
 *   A pod uid list from the API would need the agent to watch pods; the variable needs nothing.
 * - `pidFile`, `command`, `cgroup`: as OpTask target.process, passed to the sampler as is.
 * A configured selector that finds nothing yields no processes (main = 0), never the whole node.
 *
 * odop's processes: those whose environment holds ODOP_EXECUTION (every backend sets it),
 * and their descendants. One environment scan per sample serves both this and the Slurm
 * fallback above.
 */
import { type Dirent, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { cgroupMounts, pidsInCgroup } from "./cgroup.ts";
import { type EnvMatch, EnvScanner } from "./environ.ts";
import type { MainSelector } from "./sampler.ts";

export interface MainOptions {
  /** Slurm job id whose processes are the main application. */
  slurmJob?: number | undefined;
  /** Every process in a Kubernetes pod that odop did not start. */
  kubernetesPods?: boolean | undefined;
  pidFile?: string | undefined;
  command?: string | undefined;
  cgroup?: string | undefined;
}

/** Names of the subdirectories of `dir`; [] when it cannot be read. */
export type ListDirs = (dir: string) => string[];

export function listDirs(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

export interface SearchLimits {
  /** Levels below a root to look at (1: the root's children). */
  maxDepth: number;
  /** Directories listed in all, over all roots. */
  maxVisits: number;
  /** Names not descended into. */
  skip?: (name: string) => boolean;
}

/**
 * The first directory, breadth first, root by root in order, whose name satisfies `match`;
 * undefined when none within the limits.
 */
export function findDirectory(
  roots: readonly string[],
  match: (name: string) => boolean,
  limits: SearchLimits,
  list: ListDirs = listDirs,
): string | undefined {
  let visits = 0;
  for (const root of roots) {
    let level = [root];
    for (let depth = 1; depth <= limits.maxDepth && level.length > 0; depth++) {
      const next: string[] = [];
      for (const dir of level) {
        if (visits++ >= limits.maxVisits) return undefined;
        for (const name of list(dir)) {
          if (match(name)) return join(dir, name);
          if (limits.skip?.(name) !== true) next.push(join(dir, name));
        }
      }
      level = next;
    }
  }
  return undefined;
}

/** systemd units that never hold a Slurm job or the kubelet's pods. */
const NOT_HERE = /\.(mount|socket|swap|device|automount|path|timer)$/;

/** Where a Slurm job's cgroup is looked for: its name, and how far. */
export function slurmJobSearch(jobId: number): { match: (name: string) => boolean; limits: SearchLimits } {
  const name = `job_${jobId}`;
  return {
    match: (n) => n === name,
    // v2: system.slice/slurmstepd.scope/job_N (3); v1: slurm/uid_U/job_N (3), or one
    // level more under a container's own cgroup.
    limits: { maxDepth: 5, maxVisits: 2000, skip: (n) => NOT_HERE.test(n) || /^(job|step|task)_/.test(n) || /kubepods/.test(n) },
  };
}

/** Where the kubelet's pod cgroups are: kubepods.slice (systemd), kubepods (cgroupfs), kubelet-kubepods.slice (kind). */
export function kubepodsSearch(): { match: (name: string) => boolean; limits: SearchLimits } {
  return {
    match: (n) => /^(kubelet-)?kubepods(\.slice)?$/.test(n),
    limits: { maxDepth: 3, maxVisits: 500, skip: (n) => NOT_HERE.test(n) || /^(system|user)\.slice$/.test(n) },
  };
}

export interface MainProcessesOptions {
  /** cgroup hierarchies to search, in order; default: the mounted ones, v2 first. */
  cgroupRoots?: readonly string[];
  /** Samples between two searches for a cgroup not found; default 10. */
  searchEvery?: number;
  list?: ListDirs;
}

const ODOP_MARK: EnvMatch = { name: "ODOP_EXECUTION" };

export class MainProcesses {
  readonly #options: MainOptions;
  readonly #roots: () => readonly string[];
  readonly #searchEvery: number;
  readonly #list: ListDirs;
  readonly #scanner: EnvScanner;
  /** Found cgroup directories, by what was searched ("slurm", "kubepods"). */
  readonly #found = new Map<string, string>();
  readonly #lastSearch = new Map<string, number>();
  #calls = 0;
  /** odop's pids from a scan main() made this round, for odopRoots() to take. */
  #odopFromScan: number[] | undefined;

  constructor(options: MainOptions, deps: MainProcessesOptions = {}) {
    this.#options = options;
    const roots = deps.cgroupRoots;
    this.#roots = roots === undefined ? () => cgroupMounts().map((m) => m.path) : () => roots;
    this.#searchEvery = Math.max(1, deps.searchEvery ?? 10);
    this.#list = deps.list ?? listDirs;
    const matches: EnvMatch[] = [ODOP_MARK];
    if (options.slurmJob !== undefined) matches.push({ name: "SLURM_JOB_ID", value: String(options.slurmJob) });
    this.#scanner = new EnvScanner(matches);
  }

  /** Whether any main-application option is set (else the sampler measures the whole node). */
  get configured(): boolean {
    const { slurmJob, kubernetesPods, pidFile, command, cgroup } = this.#options;
    return slurmJob !== undefined || kubernetesPods === true || pidFile !== undefined || command !== undefined || cgroup !== undefined;
  }

  /** The sampler's `main`: the selector now (undefined: whole node). */
  readonly main = (): MainSelector | undefined => {
    if (!this.configured) return undefined;
    this.#calls++;
    const { slurmJob, kubernetesPods, pidFile, command, cgroup } = this.#options;
    const pids: number[] = [];
    if (slurmJob !== undefined) {
      const dir = this.#directory("slurm", slurmJobSearch(slurmJob));
      if (dir !== undefined) pids.push(...pidsInCgroup(dir));
      else {
        const [odop = [], job = []] = this.#scanner.scan();
        this.#odopFromScan = odop;
        pids.push(...job);
      }
    }
    if (kubernetesPods === true) {
      const dir = this.#directory("kubepods", kubepodsSearch());
      if (dir !== undefined) pids.push(...pidsInCgroup(dir));
    }
    const selector: MainSelector = { pids };
    if (pidFile !== undefined) selector.pidFile = pidFile;
    if (command !== undefined) selector.command = command;
    if (cgroup !== undefined) selector.cgroup = cgroup;
    return selector;
  };

  /** The sampler's `odopRoots`: processes carrying ODOP_EXECUTION. */
  readonly odopRoots = (): readonly number[] => {
    const fromScan = this.#odopFromScan;
    this.#odopFromScan = undefined;
    return fromScan ?? this.#scanner.scan()[0] ?? [];
  };

  /** The cgroup directory last found for `key` (tests, logs). */
  directory(key: "slurm" | "kubepods"): string | undefined {
    return this.#found.get(key);
  }

  #directory(key: string, search: { match: (name: string) => boolean; limits: SearchLimits }): string | undefined {
    const known = this.#found.get(key);
    if (known !== undefined && existsSync(known)) return known;
    this.#found.delete(key);
    const last = this.#lastSearch.get(key);
    if (last !== undefined && this.#calls - last < this.#searchEvery) return undefined;
    this.#lastSearch.set(key, this.#calls);
    const dir = findDirectory(this.#roots(), search.match, search.limits, this.#list);
    if (dir !== undefined) this.#found.set(key, dir);
    return dir;
  }
}
