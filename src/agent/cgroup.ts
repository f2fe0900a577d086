/**
 * The processes of a cgroup, on cgroup v2 (unified), v1 and hybrid hosts alike.
 *
 * A main application is often known only by its cgroup: a Slurm job step
 * (`/system.slice/slurmstepd.scope/job_42` on v2, `/slurm/uid_1000/job_42` under the v1
 * controllers) or a systemd unit. Its processes sit in that cgroup *and its children*
 * (Slurm puts them in `step_*` and `task_*` sub-cgroups; v2 even forbids processes in an
 * inner cgroup that has controllers enabled), so the whole subtree is read.
 */
import { type Dirent, readFileSync, readdirSync, statSync } from "node:fs";
import { join, normalize } from "node:path";

export interface CgroupMount {
  /** Where the hierarchy is mounted, e.g. /sys/fs/cgroup or /sys/fs/cgroup/cpu,cpuacct. */
  path: string;
  version: 1 | 2;
  /** v1 controllers of the hierarchy (cpu, cpuacct, memory, name=systemd, ...). */
  controllers: string[];
}

let mounts: CgroupMount[] | undefined;

/** Decodes the octal escapes (\040 for a space) of /proc/self/mountinfo paths. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/**
 * The cgroup hierarchies mounted here, in the order a relative path is looked up: v2 first,
 * then the v1 hierarchies holding cpu or cpuacct (where schedulers put jobs for CPU
 * accounting), then the other v1 hierarchies (cpuset, memory, pids, ...).
 */
export function cgroupMounts(): CgroupMount[] {
  if (mounts !== undefined) return mounts;
  const found: CgroupMount[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    const mountPoint = fields[4];
    const type = fields[dash + 1];
    if (dash < 0 || mountPoint === undefined) continue;
    if (type === "cgroup2") found.push({ path: unescapeMountPath(mountPoint), version: 2, controllers: [] });
    if (type === "cgroup") {
      const controllers = (fields[dash + 3] ?? "").split(",").filter((o) => o !== "rw" && o !== "ro");
      found.push({ path: unescapeMountPath(mountPoint), version: 1, controllers });
    }
  }
  const rank = (m: CgroupMount): number =>
    m.version === 2 ? 0 : m.controllers.includes("cpu") || m.controllers.includes("cpuacct") ? 1 : 2;
  mounts = found.sort((a, b) => rank(a) - rank(b));
  return mounts;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The directory of cgroup `path`: a filesystem path when it starts with a cgroup mount point
 * (`/sys/fs/cgroup/system.slice/x.scope`), otherwise a cgroup path as /proc/PID/cgroup
 * shows it (`/system.slice/x.scope`, leading slash optional), looked up in each hierarchy in
 * the order of {@link cgroupMounts}; the first hierarchy where it exists wins. Undefined when
 * it exists nowhere (the job has not started, or has ended).
 */
export function cgroupDirectory(path: string): string | undefined {
  const all = cgroupMounts();
  const absolute = normalize(path);
  if (all.some((m) => absolute === m.path || absolute.startsWith(`${m.path}/`))) {
    return isDirectory(absolute) ? absolute : undefined;
  }
  for (const mount of all) {
    const candidate = join(mount.path, normalize(`/${path}`));
    if (isDirectory(candidate)) return candidate;
  }
  return undefined;
}

function collect(directory: string, into: Set<number>): void {
  let text: string;
  let entries: Dirent[];
  try {
    text = readFileSync(join(directory, "cgroup.procs"), "latin1");
    entries = readdirSync(directory, { withFileTypes: true });
  } catch (error) {
    // A sub-cgroup removed while we read (a job step ending) is normal.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const word of text.split("\n")) if (word !== "") into.add(Number(word));
  for (const entry of entries) if (entry.isDirectory()) collect(join(directory, entry.name), into);
}

/**
 * Pids of the processes in cgroup `path` and in all of its sub-cgroups, ascending; [] when
 * the cgroup does not exist. See {@link cgroupDirectory} for how `path` is resolved.
 */
export function pidsInCgroup(path: string): number[] {
  const directory = cgroupDirectory(path);
  if (directory === undefined) return [];
  const pids = new Set<number>();
  collect(directory, pids);
  return [...pids].sort((a, b) => a - b);
}
