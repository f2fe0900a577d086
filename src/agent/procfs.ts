/**
 * Small /proc readers of processes and threads for the node sampler (Linux only).
 *
 * Contracts shared by every reader here:
 * - A process or thread that vanishes while it is being read (ENOENT, ESRCH) is normal on a
 *   busy node and is skipped silently; so is one we may not see (EACCES, EPERM: `hidepid`).
 *   Any other error is a real fault and is thrown.
 * - Reads are synchronous (see proc-file.ts for why). The one exception is
 *   {@link readPidFile}, whose file may sit on a network file system.
 * - CPU times are in clock ticks (USER_HZ, see clockTicksPerSecond in node-stats.ts), the
 *   unit of both /proc/PID/stat and /proc/stat.
 */
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { pageSize } from "./node-stats.ts";
import { ProcReader, listProcDir, numericEntries } from "./proc-file.ts";

// One import site for the agent's readers: process-level ones live here, node-wide ones in
// node-stats.ts, cgroups in cgroup.ts.
export { pidsInCgroup } from "./cgroup.ts";
export {
  type CpuTimes,
  type MemoryInfo,
  clockTicksPerSecond,
  pageSize,
  readCpuTimes,
  readMemoryInfo,
} from "./node-stats.ts";

/** What /proc/PID/stat (or /proc/PID/task/TID/stat) says about one process or thread. */
export interface ProcStat {
  pid: number;
  /** Executable name as the kernel keeps it (at most 15 bytes); may hold spaces and parentheses. */
  comm: string;
  /** One letter: R running, S sleeping, D disk wait, Z zombie, T stopped, ... */
  state: string;
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time, in clock ticks after boot: with the pid, it tells a reused pid apart. */
  startTicks: number;
  /** Logical CPU the task last ran on (the one it runs on now, when it is running). */
  processor: number;
}

/** One thread of a process, from /proc/PID/task/TID/stat. */
export interface ThreadStat {
  tid: number;
  cpuTicks: number;
  startTicks: number;
  processor: number;
}

/** Called for every thread a walk reads, without allocating an object per thread. */
export type ThreadVisitor = (tid: number, cpuTicks: number, startTicks: number, processor: number) => void;

// ---------------------------------------------------------------------------------------
// Reading

const proc = new ProcReader();

/** Parses space/NUL/newline separated decimal integers of proc.buffer[0..length) (children files). */
function parseIntegers(length: number, into: number[]): void {
  let value = -1;
  for (let i = 0; i < length; i++) {
    const c = proc.buffer[i] ?? 32;
    if (c >= 48 && c <= 57) value = (value < 0 ? 0 : value * 10) + (c - 48);
    else if (value >= 0) {
      into.push(value);
      value = -1;
    }
  }
  if (value >= 0) into.push(value);
}

// ---------------------------------------------------------------------------------------
// /proc/PID/stat

/** The fields of the last parsed stat line (reused: the hot path allocates nothing). */
const parsed = { state: 0, ppid: 0, flags: 0, cpuTicks: 0, startTicks: 0, processor: 0, commStart: 0, commEnd: 0 };

/** PF_KTHREAD in the flags field: a kernel thread (no command line, never the application). */
const PF_KTHREAD = 0x00200000;

/**
 * Parses a stat line held in `bytes[0..length)` into {@link parsed}. The comm field is any
 * bytes between the FIRST "(" and the LAST ")": a comm such as `(a) b)` holds both, so
 * splitting on spaces or at the first ")" would shift every field. False when truncated.
 */
function parseStatBytes(bytes: Uint8Array, length: number): boolean {
  let close = length - 1;
  while (close >= 0 && bytes[close] !== 41 /* ) */) close--;
  const open = bytes.indexOf(40 /* ( */);
  if (close < 0 || open < 0 || open > close) return false;
  parsed.commStart = open + 1;
  parsed.commEnd = close;
  let utime = 0;
  let field = 3; // numbering of proc(5): 1 pid, 2 comm, 3 state, ...
  let i = close + 2;
  while (i < length && field <= 39) {
    if (field === 3) parsed.state = bytes[i] ?? 0;
    else if (field === 4 || field === 9 || field === 14 || field === 15 || field === 22 || field === 39) {
      let value = 0;
      for (let c = bytes[i] ?? 0; c >= 48 && c <= 57; c = bytes[++i] ?? 0) value = value * 10 + (c - 48);
      if (field === 4) parsed.ppid = value;
      else if (field === 9) parsed.flags = value;
      else if (field === 14) utime = value;
      else if (field === 15) parsed.cpuTicks = utime + value;
      else if (field === 22) parsed.startTicks = value;
      else parsed.processor = value;
    }
    while (i < length && bytes[i] !== 32) i++;
    i++;
    field++;
  }
  return field > 39;
}

/** Parses the text of a /proc/PID/stat file; undefined when it is not one. */
export function parseProcStat(text: string): ProcStat | undefined {
  const bytes = Buffer.from(text, "utf8");
  if (!parseStatBytes(bytes, bytes.length)) return undefined;
  return toProcStat(bytes);
}

function toProcStat(bytes: Buffer): ProcStat {
  return {
    pid: Number.parseInt(bytes.toString("latin1", 0, parsed.commStart - 1), 10),
    comm: bytes.toString("utf8", parsed.commStart, parsed.commEnd),
    state: String.fromCharCode(parsed.state),
    ppid: parsed.ppid,
    cpuTicks: parsed.cpuTicks,
    startTicks: parsed.startTicks,
    processor: parsed.processor,
  };
}

/** /proc/PID/stat of a process (process-wide CPU times); undefined when it is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  const length = proc.read(`/proc/${pid}/stat`, true);
  if (length < 0 || !parseStatBytes(proc.buffer, length)) return undefined;
  return toProcStat(proc.buffer.subarray(0, length));
}

/** Visits the threads of `pid`; false when the process is gone. */
export function visitThreads(pid: number, visit: ThreadVisitor): boolean {
  const tids = listProcDir(`/proc/${pid}/task`);
  if (tids === undefined) return false;
  for (const tid of numericEntries(tids)) visitThread(pid, tid, visit);
  return true;
}

function visitThread(pid: number, tid: number, visit: ThreadVisitor): void {
  const length = proc.read(`/proc/${pid}/task/${tid}/stat`, true);
  if (length >= 0 && parseStatBytes(proc.buffer, length)) visit(tid, parsed.cpuTicks, parsed.startTicks, parsed.processor);
}

/** The threads of `pid` with their CPU ticks and last CPU; [] when the process is gone. */
export function listThreads(pid: number): ThreadStat[] {
  const threads: ThreadStat[] = [];
  visitThreads(pid, (tid, cpuTicks, startTicks, processor) => threads.push({ tid, cpuTicks, startTicks, processor }));
  return threads;
}

/** Resident memory of a process in bytes (statm × page size); undefined when it is gone. */
export function processRss(pid: number): number | undefined {
  const length = proc.read(`/proc/${pid}/statm`, true);
  if (length < 0) return undefined;
  let i = 0;
  while (i < length && proc.buffer[i] !== 32) i++; // field 1: size; field 2: resident
  let pages = 0;
  for (let c = proc.buffer[++i] ?? 0; c >= 48 && c <= 57; c = proc.buffer[++i] ?? 0) pages = pages * 10 + (c - 48);
  return pages * pageSize();
}

// ---------------------------------------------------------------------------------------
// Process trees

/** Every live process id on the node (what /proc lists). */
export function listPids(): number[] {
  return numericEntries(readdirSync("/proc"));
}

/** ppid → child pids, over every process in /proc. One stat read per process: costly. */
export function childrenMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const pid of listPids()) {
    const length = proc.read(`/proc/${pid}/stat`, true);
    if (length < 0 || !parseStatBytes(proc.buffer, length)) continue;
    const siblings = children.get(parsed.ppid);
    if (siblings === undefined) children.set(parsed.ppid, [pid]);
    else siblings.push(pid);
  }
  return children;
}

let childrenFiles: boolean | undefined;

/**
 * Whether the kernel has /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN, on in every
 * distribution kernel): it lets a walk read only the tree it measures instead of all /proc.
 */
export function hasChildrenFiles(): boolean {
  childrenFiles ??= existsSync(`/proc/self/task/${process.pid}/children`);
  return childrenFiles;
}

export interface WalkOptions {
  /** Processes neither visited nor descended into (odop's own tree, when walking the main one). */
  exclude?: ReadonlySet<number>;
  /** Called for every thread of every process visited. */
  onThread?: ThreadVisitor;
  /**
   * Find children with {@link childrenMap} even where children files exist: what a kernel
   * without them gets (tests use it to check both ways agree).
   */
  scan?: boolean;
}

/**
 * The live processes among `rootPids` and all their descendants, roots first (breadth
 * first); dead roots are left out. Children come from each thread's children file (a
 * thread, not the process, is a child's parent), so a walk reads only the tree itself; on a
 * kernel without those files it falls back to {@link childrenMap}. A child forked while the
 * walk runs may be missed until the next walk: the kernel documents the files as best-effort.
 */
export function walkProcessTree(rootPids: Iterable<number>, options: WalkOptions = {}): number[] {
  const { exclude, onThread, scan = false } = options;
  const fallback = hasChildrenFiles() && !scan ? undefined : childrenMap();
  const queue = [...rootPids];
  const seen = new Set<number>();
  const found: number[] = [];
  for (let next = 0; next < queue.length; next++) {
    const pid = queue[next] ?? 0;
    if (seen.has(pid) || exclude?.has(pid) === true) continue;
    seen.add(pid);
    const names = listProcDir(`/proc/${pid}/task`);
    if (names === undefined) continue;
    found.push(pid);
    for (const tid of numericEntries(names)) {
      if (onThread !== undefined) visitThread(pid, tid, onThread);
      if (fallback !== undefined) continue;
      const length = proc.read(`/proc/${pid}/task/${tid}/children`, false);
      if (length > 0) parseIntegers(length, queue);
    }
    if (fallback !== undefined) queue.push(...(fallback.get(pid) ?? []));
  }
  return found;
}

/** The live processes among `rootPids` and all their descendants (roots included). */
export function descendants(rootPids: Iterable<number>): number[] {
  return walkProcessTree(rootPids);
}

// ---------------------------------------------------------------------------------------
// Selecting processes

/**
 * The command line of a process: its arguments joined with spaces. "" for kernel threads
 * and zombies (they have none); undefined when the process is gone.
 */
export function readCommandLine(pid: number): string | undefined {
  let length = proc.read(`/proc/${pid}/cmdline`, false);
  if (length < 0) return undefined;
  if (length > 0 && proc.buffer[length - 1] === 0) length--;
  for (let i = 0; i < length; i++) if (proc.buffer[i] === 0) proc.buffer[i] = 32;
  return proc.buffer.toString("utf8", 0, length);
}

/** Whether `pid` is a kernel thread (PF_KTHREAD): it never becomes an application. */
export function isKernelThread(pid: number): boolean {
  const length = proc.read(`/proc/${pid}/stat`, true);
  return length > 0 && parseStatBytes(proc.buffer, length) && (parsed.flags & PF_KTHREAD) !== 0;
}

/** `pattern` as a RegExp without the global and sticky flags (no lastIndex state to carry). */
export function commandRegex(pattern: RegExp | string): RegExp {
  if (typeof pattern === "string") return new RegExp(pattern);
  return pattern.global || pattern.sticky ? new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, "")) : pattern;
}

/**
 * Processes whose command line ({@link readCommandLine}) matches `pattern`, except this
 * process; kernel threads and zombies never match. Reads every command line on the node:
 * for repeated scans, CommandScanner (command-scan.ts) reads only what may have changed.
 */
export function findByCommand(pattern: RegExp | string): number[] {
  const regex = commandRegex(pattern);
  const matches: number[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const line = readCommandLine(pid);
    if (line !== undefined && line !== "" && regex.test(line)) matches.push(pid);
  }
  return matches;
}

/** Largest pid Linux can hand out (PID_MAX_LIMIT on 64-bit). */
const PID_MAX = 4_194_304;

/**
 * The pid in a pid file (first word, decimal); undefined when the file does not exist (the
 * application has not started, or has finished) or does not hold a pid. Whether that
 * process is alive is the caller's question. Other read errors (EACCES, EIO) are thrown: they
 * are a misconfiguration to report, not a state of the application.
 */
export async function readPidFile(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw error;
  }
  const word = /^\s*(\d{1,7})(?:\s|$)/.exec(text)?.[1];
  const pid = word === undefined ? 0 : Number(word);
  return pid > 0 && pid <= PID_MAX ? pid : undefined;
}

