/**
 * The node sampler: per-core CPU shares (all work, the main application's, odop's own) and
 * memory, as a {@link NodeSample}. Used in-process by the embedded engine and by
 * `odop agent`.
 *
 * How a core's shares are measured:
 * - `total` comes from /proc/stat deltas, read directly rather than through
 *   systeminformation's `currentLoad()`: /proc/stat counts in the same clock ticks as the
 *   threads' times and is read in the same synchronous block as them, so both cover the
 *   same interval, the one since *this* sampler's previous call. `currentLoad()` keeps one
 *   module-wide previous snapshot (any other caller in the process shortens our interval),
 *   answers with stale values when called twice within 200 ms, spawns `sh -c "cat
 *   /proc/stat | grep cpu"` on every call (a fork per second costs more than this whole
 *   sample), adds guest time that user time already contains, and numbers cores by position
 *   rather than by kernel id.
 * - `main` and `odop`: each thread's CPU-tick delta is attributed to the core it last ran on
 *   (`processor` in /proc/PID/task/TID/stat) and divided by that core's elapsed ticks.
 *   A thread that migrated during the interval puts all its ticks on its last core, so a
 *   share is clamped to the core's `total` (it cannot have used more than was busy).
 * - Only threads seen in both samples count (a thread's first sample is its baseline), so
 *   threads that start or end between samples create no spikes; the CPU a process used in
 *   the interval it exited in is lost to `main`/`odop`, never to `total`.
 *
 * Cost of one sample, measured on the 2-core development VM (Linux 6.18, Node 24, ~100
 * processes on the node; main: a shell with 2 children by pid, odop: one process), CPU time
 * of the sample() call: at a 1 s cadence (cold caches) about 0.43 ms with no selector or a
 * pid selector and 0.9 ms with a `command` selector; back to back (warm) 0.10, 0.18 and
 * 0.33 ms. That is under 0.1 % of one core at 1 s sampling. What it costs grows with the
 * threads measured (two small reads each, stat and children, ~13 µs), not with the node's
 * other processes; a `command` selector adds a listing of /proc every sample and reads
 * every command line every tenth (see command-scan.ts).
 */
import { readFileSync } from "node:fs";
import si from "systeminformation";
import { SAMPLE_VERSION, type CoreSample, type NodeSample } from "../api/sample.ts";
import {
  type CpuTimes,
  clockTicksPerSecond,
  pidsInCgroup,
  processRss,
  readCpuTimes,
  readPidFile,
  walkProcessTree,
} from "./procfs.ts";
import { CommandScanner } from "./command-scan.ts";

/**
 * How to recognise the main application. Each field adds processes (a union); the roots
 * found and all their descendants are the main application, less odop's own tree and this
 * process. A selector with no field set is the same as none.
 */
export interface MainSelector {
  pids?: readonly number[];
  /** File holding the pid of the application's root process. */
  pidFile?: string;
  /** Regular expression matched against command lines (arguments joined with spaces). */
  command?: string;
  /** cgroup path (v2 or v1; see pidsInCgroup): every process in it and its sub-cgroups. */
  cgroup?: string;
}

export interface SamplerOptions {
  /** Node name put into every sample. */
  node: string;
  /** The main application's selector now; undefined: the whole node except odop's work. */
  main: () => MainSelector | undefined;
  /** Pids of odop's executions now (backends' children); they and their descendants are odop. */
  odopRoots: () => readonly number[];
  /** Milliseconds since the epoch; Date.now by default. */
  now?: () => number;
  /** Length of the interval the first sample measures (no earlier call to measure from). */
  warmupMs?: number;
}

/** Per-thread state between samples. */
interface ThreadMark {
  cpuTicks: number;
  startTicks: number;
  /** Number of the last sample that saw the thread: older marks belong to dead threads. */
  seen: number;
}

const MAX_INTERVAL_MS = 3_600_000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Sampler {
  readonly #node: string;
  readonly #main: () => MainSelector | undefined;
  readonly #odopRoots: () => readonly number[];
  readonly #now: () => number;
  readonly #warmupMs: number;

  readonly #threads = new Map<number, ThreadMark>();
  #sampleNumber = 0;
  #previous: { time: number; cpu: CpuTimes } | undefined;
  #spare: CpuTimes = { ids: [], busy: [], total: [] };
  /** Kernel CPU id → index into the current CpuTimes (-1: not online). */
  #indexOf = new Int32Array(0);
  /** Ticks attributed to each core in the current sample, by index. */
  #mainTicks = new Float64Array(0);
  #odopTicks = new Float64Array(0);
  readonly #commands = new CommandScanner();
  #inFlight: Promise<NodeSample> | undefined;
  /** Boot-relative clock ticks when the previous sample was taken. */
  #sinceTicks: number | undefined;

  constructor(options: SamplerOptions) {
    this.#node = options.node;
    this.#main = options.main;
    this.#odopRoots = options.odopRoots;
    this.#now = options.now ?? Date.now;
    this.#warmupMs = options.warmupMs ?? 250;
  }

  /**
   * Measures the interval since the previous call. The first call takes a baseline, waits
   * `warmupMs` and measures that. Concurrent calls share one measurement. Rejects when the
   * selector cannot be used (an invalid `command` pattern, an unreadable pid file).
   */
  sample(): Promise<NodeSample> {
    this.#inFlight ??= this.#sampleOnce().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #sampleOnce(): Promise<NodeSample> {
    if (this.#previous === undefined) {
      await this.#measure();
      await delay(this.#warmupMs);
    }
    const sample = await this.#measure();
    if (sample === undefined) throw new Error("sampler has no baseline");
    return sample;
  }

  /** Takes one measurement; undefined when it is the baseline (no previous one). */
  async #measure(): Promise<NodeSample | undefined> {
    // What may wait (a pid file on a network file system) happens before the synchronous
    // block below, which reads /proc/stat and the threads back to back so that they
    // describe the same instant.
    const mainRoots = await this.#mainRoots();
    const odopRoots = this.#odopRoots();

    const time = Math.floor(this.#now());
    const uptimeTicks = readUptimeTicks();
    const cpu = readCpuTimes(this.#spare);
    this.#index(cpu);
    const sampleNumber = ++this.#sampleNumber;
    const odopPids = walkProcessTree(odopRoots, { onThread: this.#attribute(this.#odopTicks, sampleNumber) });
    const exclude = new Set(odopPids).add(process.pid);
    const mainPids =
      mainRoots === undefined
        ? []
        : walkProcessTree(mainRoots, { exclude, onThread: this.#attribute(this.#mainTicks, sampleNumber) });
    for (const [tid, mark] of this.#threads) if (mark.seen !== sampleNumber) this.#threads.delete(tid);
    this.#sinceTicks = uptimeTicks;
    // Memory through systeminformation (DESIGN: node metrics come from it); it need not
    // describe the same instant as the CPU ticks above, so it is read after them.
    const mem = await si.mem();
    const memory = { totalBytes: mem.total, availableBytes: mem.available };
    const odopBytes = sumRss(odopPids);
    const mainBytes = mainRoots === undefined ? 0 : sumRss(mainPids);

    const previous = this.#previous;
    this.#spare = previous?.cpu ?? { ids: [], busy: [], total: [] };
    this.#previous = { time, cpu };
    if (previous === undefined) return undefined;

    const cores: CoreSample[] = [];
    let elapsedSum = 0;
    let elapsedCount = 0;
    let mainTicks = 0;
    let mainShares = 0;
    for (let i = 0; i < cpu.ids.length; i++) {
      const id = cpu.ids[i] ?? 0;
      const before = previous.cpu.ids[i] === id ? i : previous.cpu.ids.indexOf(id);
      const elapsed = before < 0 ? 0 : (cpu.total[i] ?? 0) - (previous.cpu.total[before] ?? 0);
      if (elapsed <= 0) {
        // Just brought online (or no tick yet): no interval to measure over.
        cores.push({ id, total: 0, main: 0, odop: 0 });
        continue;
      }
      elapsedSum += elapsed;
      elapsedCount++;
      const total = clamp(((cpu.busy[i] ?? 0) - (previous.cpu.busy[before] ?? 0)) / elapsed, 1);
      const odop = clamp((this.#odopTicks[i] ?? 0) / elapsed, total);
      const main =
        mainRoots === undefined ? Math.max(0, total - odop) : clamp((this.#mainTicks[i] ?? 0) / elapsed, total);
      mainTicks += this.#mainTicks[i] ?? 0;
      mainShares += main;
      cores.push({ id, total, main, odop });
    }

    // Shares are relative to the cores' own elapsed ticks; the wall clock only labels the
    // interval (and stands in when the injected clock did not move).
    const elapsedTicks = elapsedCount === 0 ? 0 : elapsedSum / elapsedCount;
    const wallMs = time - previous.time;
    const intervalMs = Math.min(
      MAX_INTERVAL_MS,
      wallMs > 0 ? wallMs : Math.max(1, (elapsedTicks * 1000) / clockTicksPerSecond()),
    );
    return {
      version: SAMPLE_VERSION,
      node: this.#node,
      time,
      intervalMs,
      cores,
      memory: {
        ...memory,
        mainBytes: mainRoots === undefined ? Math.max(0, memory.totalBytes - memory.availableBytes - odopBytes) : mainBytes,
        odopBytes,
      },
      main: {
        processes: mainPids.length,
        cpu: mainRoots === undefined ? mainShares : elapsedTicks === 0 ? 0 : mainTicks / elapsedTicks,
      },
    };
  }

  /** The main application's root pids now; undefined when no selector is configured. */
  async #mainRoots(): Promise<number[] | undefined> {
    const selector = this.#main();
    if (selector === undefined) return undefined;
    const { pids, pidFile, command, cgroup } = selector;
    if (pids === undefined && pidFile === undefined && command === undefined && cgroup === undefined) {
      return undefined;
    }
    const roots: number[] = [];
    for (const pid of pids ?? []) if (Number.isSafeInteger(pid) && pid > 0) roots.push(pid);
    if (pidFile !== undefined) {
      const pid = await readPidFile(pidFile);
      if (pid !== undefined) roots.push(pid);
    }
    if (command !== undefined) roots.push(...this.#findByCommand(command));
    if (cgroup !== undefined) roots.push(...pidsInCgroup(cgroup));
    return roots;
  }

  #findByCommand(pattern: string): number[] {
    try {
      return this.#commands.find(pattern);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new Error(`main.command is not a valid regular expression: ${JSON.stringify(pattern)}`, { cause: error });
    }
  }

  /** Maps kernel CPU ids to indexes of `cpu` and zeroes the per-core tick counters. */
  #index(cpu: CpuTimes): void {
    const maxId = cpu.ids.length === 0 ? -1 : Math.max(...cpu.ids);
    if (this.#indexOf.length !== maxId + 1) this.#indexOf = new Int32Array(maxId + 1);
    this.#indexOf.fill(-1);
    for (let i = 0; i < cpu.ids.length; i++) this.#indexOf[cpu.ids[i] ?? 0] = i;
    if (this.#mainTicks.length !== cpu.ids.length) {
      this.#mainTicks = new Float64Array(cpu.ids.length);
      this.#odopTicks = new Float64Array(cpu.ids.length);
    } else {
      this.#mainTicks.fill(0);
      this.#odopTicks.fill(0);
    }
  }

  /**
   * A thread visitor that adds each thread's tick delta since its previous sighting to
   * `ticks[core]` and moves its mark forward. A tid seen with another start time is a new
   * thread that reused the id: it gets a baseline, not a delta.
   */
  #attribute(ticks: Float64Array, sampleNumber: number) {
    const threads = this.#threads;
    const indexOf = this.#indexOf;
    return (tid: number, cpuTicks: number, startTicks: number, processor: number): void => {
      const mark = threads.get(tid);
      if (mark === undefined) {
        threads.set(tid, { cpuTicks, startTicks, seen: sampleNumber });
        // A thread that started after the previous sample spent all its CPU time in this
        // interval: count it (short-lived worker threads would otherwise go unseen).
        const core = indexOf[processor] ?? -1;
        if (this.#sinceTicks !== undefined && startTicks >= this.#sinceTicks && cpuTicks > 0 && core >= 0) {
          ticks[core] = (ticks[core] ?? 0) + cpuTicks;
        }
        return;
      }
      if (mark.startTicks === startTicks && mark.seen === sampleNumber - 1) {
        const delta = cpuTicks - mark.cpuTicks;
        const core = indexOf[processor] ?? -1;
        if (delta > 0 && core >= 0) ticks[core] = (ticks[core] ?? 0) + delta;
      }
      mark.cpuTicks = cpuTicks;
      mark.startTicks = startTicks;
      mark.seen = sampleNumber;
    };
  }
}

function clamp(share: number, max: number): number {
  return share <= 0 || Number.isNaN(share) ? 0 : share >= max ? max : share;
}

function sumRss(pids: readonly number[]): number {
  let bytes = 0;
  for (const pid of pids) bytes += processRss(pid) ?? 0;
  return bytes;
}

/** Time since boot in clock ticks (the unit of a thread's start time), from /proc/uptime. */
function readUptimeTicks(): number | undefined {
  try {
    const seconds = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    return Number.isFinite(seconds) ? Math.floor(seconds * clockTicksPerSecond()) : undefined;
  } catch {
    return undefined;
  }
}
