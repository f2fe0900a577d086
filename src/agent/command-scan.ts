/**
 * Finding the main application by command line, sample after sample, without reading every
 * process's command line every second.
 *
 * A full scan reads /proc/PID/cmdline of every process on the node (about 10 µs each, and a
 * many-core node has hundreds of kernel threads alone). Between full scans, a process keeps
 * its verdict, because a command line changes only by exec(), and exec() comes right after
 * fork() in nearly every launch (srun, mpirun, a job script). So:
 * - a process is read when it first appears and again in its next `youngScans` scans (it
 *   may still have been the parent's fork when first read);
 * - everything is read again every `fullScanEvery` scans, for the rare long-lived process
 *   that exec()s late (a wrapper shell that ends with `exec ./simulation`): such a process
 *   is found at most `fullScanEvery` scans late;
 * - kernel threads are never read again: they never exec.
 */
import { commandRegex, isKernelThread, listPids, readCommandLine } from "./procfs.ts";

export interface CommandScannerOptions {
  /** Scans between two reads of every command line (1: read all every time). */
  fullScanEvery?: number;
  /** Scans after its first in which a new process is read again. */
  youngScans?: number;
}

interface Verdict {
  matched: boolean;
  /** Further scans in which the process is read again regardless. */
  young: number;
  kernel: boolean;
}

export class CommandScanner {
  readonly #fullScanEvery: number;
  readonly #youngScans: number;
  #verdicts = new Map<number, Verdict>();
  #source: string | undefined;
  #regex: RegExp | undefined;
  #scans = 0;

  constructor(options: CommandScannerOptions = {}) {
    this.#fullScanEvery = Math.max(1, options.fullScanEvery ?? 10);
    this.#youngScans = Math.max(0, options.youngScans ?? 3);
  }

  /**
   * Pids whose command line matches `pattern` (a regular expression), except this process.
   * Throws a SyntaxError for an invalid pattern. A new pattern starts from a full scan.
   */
  find(pattern: string): number[] {
    if (pattern !== this.#source || this.#regex === undefined) {
      this.#regex = commandRegex(pattern);
      this.#source = pattern;
      this.#verdicts = new Map();
      this.#scans = 0;
    }
    const regex = this.#regex;
    const full = this.#scans++ % this.#fullScanEvery === 0;
    const previous = this.#verdicts;
    const verdicts = new Map<number, Verdict>();
    const matches: number[] = [];
    for (const pid of listPids()) {
      if (pid === process.pid) continue;
      let verdict = previous.get(pid);
      if (verdict === undefined || (!verdict.kernel && (full || verdict.young > 0))) {
        const line = readCommandLine(pid);
        if (line === undefined) continue; // gone since the listing
        const young = verdict === undefined ? this.#youngScans : verdict.young - 1;
        const kernel = line === "" && (verdict?.kernel ?? isKernelThread(pid));
        verdict = { matched: line !== "" && regex.test(line), young: Math.max(0, young), kernel };
      }
      verdicts.set(pid, verdict);
      if (verdict.matched) matches.push(pid);
    }
    this.#verdicts = verdicts;
    return matches;
  }
}
