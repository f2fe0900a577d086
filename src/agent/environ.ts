/**
 * Processes by environment variable, from /proc/PID/environ (root reads every process's).
 *
 * The agent recognises processes by what their launcher put into their environment, where
 * no cgroup tells them apart:
 * - odop's own executions carry ODOP_EXECUTION (every backend sets it: stage-plans.ts,
 *   pod-spec.ts);
 * - the tasks of a Slurm job carry SLURM_JOB_ID=<id> (slurmstepd sets it), which is the
 *   only way to find them under proctrack/linuxproc, where Slurm makes no cgroups.
 *
 * /proc/PID/environ shows the environment the process was exec()ed with (setenv() later
 * does not change it), so, as for command lines (command-scan.ts, same policy), a process
 * keeps its verdict: it is read when it first appears and in its next `youngScans` scans
 * (it may still have been its parent's fork), everything is read again every
 * `fullScanEvery` scans (a reused pid), and kernel threads (empty environ) are never read
 * again.
 */
import { ProcReader } from "./proc-file.ts";
import { isKernelThread, listPids } from "./procfs.ts";

const proc = new ProcReader();

/** A variable to look for: `NAME=value`, or `NAME=` with anything when value is undefined. */
export interface EnvMatch {
  name: string;
  value?: string;
}

/**
 * Whether the environ block `bytes[0..length)` (NUL-separated `NAME=value` entries) holds
 * the variable `match` describes.
 */
export function environHas(bytes: Uint8Array, length: number, match: EnvMatch): boolean {
  const needle = Buffer.from(match.value === undefined ? `${match.name}=` : `${match.name}=${match.value}\0`, "utf8");
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, length);
  for (let at = view.indexOf(needle); at >= 0; at = view.indexOf(needle, at + 1)) {
    if (at === 0 || view[at - 1] === 0) return true; // else inside another entry (XNAME=, or a value)
  }
  // The last entry may lack its terminating NUL.
  if (match.value !== undefined) {
    const tail = Buffer.from(`${match.name}=${match.value}`, "utf8");
    const start = length - tail.length;
    return start >= 0 && (start === 0 || view[start - 1] === 0) && view.subarray(start, length).equals(tail);
  }
  return false;
}

/**
 * Which of `matches` the environment of `pid` holds; undefined when the process is gone
 * (or hidden from us). A kernel thread or a zombie has an empty environment: all false.
 */
export function processEnvHas(pid: number, matches: readonly EnvMatch[]): boolean[] | undefined {
  return readMatches(pid, matches)?.matched;
}

function readMatches(pid: number, matches: readonly EnvMatch[]): { matched: boolean[]; empty: boolean } | undefined {
  const length = proc.read(`/proc/${pid}/environ`, false);
  if (length < 0) return undefined;
  return { matched: matches.map((m) => environHas(proc.buffer, length, m)), empty: length === 0 };
}

/** The value of variable `name` in the environment of `pid`; undefined when absent or gone. */
export function processEnvValue(pid: number, name: string): string | undefined {
  const length = proc.read(`/proc/${pid}/environ`, false);
  if (length < 0) return undefined;
  const needle = Buffer.from(`${name}=`, "utf8");
  const view = proc.buffer.subarray(0, length);
  for (let at = view.indexOf(needle); at >= 0; at = view.indexOf(needle, at + 1)) {
    if (at !== 0 && view[at - 1] !== 0) continue;
    const end = view.indexOf(0, at);
    return view.toString("utf8", at + needle.length, end < 0 ? length : end);
  }
  return undefined;
}

export interface EnvScannerOptions {
  /** Scans between two reads of every environment (1: read all every time). */
  fullScanEvery?: number;
  /** Scans after its first in which a new process is read again. */
  youngScans?: number;
}

interface Verdict {
  matched: boolean[];
  young: number;
  kernel: boolean;
}

/** Finds, scan after scan, the processes whose environment holds each of a fixed set of variables. */
export class EnvScanner {
  readonly #matches: readonly EnvMatch[];
  readonly #fullScanEvery: number;
  readonly #youngScans: number;
  #verdicts = new Map<number, Verdict>();
  #scans = 0;

  constructor(matches: readonly EnvMatch[], options: EnvScannerOptions = {}) {
    this.#matches = matches;
    this.#fullScanEvery = Math.max(1, options.fullScanEvery ?? 10);
    this.#youngScans = Math.max(0, options.youngScans ?? 3);
  }

  /** For each match (in order), the pids whose environment holds it, ascending; never this process. */
  scan(): number[][] {
    const full = this.#scans++ % this.#fullScanEvery === 0;
    const previous = this.#verdicts;
    const verdicts = new Map<number, Verdict>();
    const found: number[][] = this.#matches.map(() => []);
    for (const pid of listPids().sort((a, b) => a - b)) {
      if (pid === process.pid) continue;
      let verdict = previous.get(pid);
      if (verdict === undefined || (!verdict.kernel && (full || verdict.young > 0))) {
        // Unreadable: gone since the listing (then it is not listed next time), or hidden
        // from us (no CAP_SYS_PTRACE for a non-dumpable process): no match, and read again
        // only as any other process is, not every scan.
        const read = readMatches(pid, this.#matches) ?? { matched: this.#matches.map(() => false), empty: true };
        const young = verdict === undefined ? this.#youngScans : verdict.young - 1;
        const kernel = read.empty && (verdict?.kernel ?? isKernelThread(pid));
        verdict = { matched: read.matched, young: Math.max(0, young), kernel };
      }
      verdicts.set(pid, verdict);
      for (let i = 0; i < found.length; i++) if (verdict.matched[i] === true) found[i]?.push(pid);
    }
    this.#verdicts = verdicts;
    return found;
  }
}
