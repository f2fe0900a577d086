/**
 * Node-wide counters: per-CPU times (/proc/stat), memory (/proc/meminfo), and the page size
 * and clock tick rate the kernel gave this process (its ELF auxiliary vector).
 */
import { endianness } from "node:os";
import { ProcReader } from "./proc-file.ts";

const proc = new ProcReader();

// ---------------------------------------------------------------------------------------
// /proc/stat

/** Cumulative times of every online logical CPU, in clock ticks, as /proc/stat lists them. */
export interface CpuTimes {
  /** Kernel CPU ids, ascending. */
  ids: number[];
  /** Ticks the CPU did anything but idle or wait for I/O (user, nice, system, irq, softirq, steal). */
  busy: number[];
  /** Every tick of the CPU (busy, idle, iowait). */
  total: number[];
}

/**
 * Reads the per-CPU lines of /proc/stat into `into` (arrays reused). guest and guest_nice
 * are already inside user and nice, so they are not added again; steal counts as busy (the
 * hypervisor took the core: it was not free for us); iowait counts as idle.
 */
export function readCpuTimes(into: CpuTimes = { ids: [], busy: [], total: [] }): CpuTimes {
  const length = proc.read("/proc/stat", true);
  into.ids.length = 0;
  into.busy.length = 0;
  into.total.length = 0;
  let i = 0;
  while (i < length) {
    // Lines: "cpu  ..." (all CPUs), "cpu0 ...", "cpu1 ...", then "intr ..." and more.
    if (proc.buffer[i] !== 99 || proc.buffer[i + 1] !== 112 || proc.buffer[i + 2] !== 117) break;
    i += 3;
    const aggregate = proc.buffer[i] === 32;
    let id = 0;
    for (let c = proc.buffer[i] ?? 0; c >= 48 && c <= 57; c = proc.buffer[++i] ?? 0) id = id * 10 + (c - 48);
    let busy = 0;
    let total = 0;
    for (let field = 1; field <= 8; field++) {
      while (proc.buffer[i] === 32) i++;
      let value = 0;
      for (let c = proc.buffer[i] ?? 0; c >= 48 && c <= 57; c = proc.buffer[++i] ?? 0) value = value * 10 + (c - 48);
      total += value;
      if (field !== 4 && field !== 5) busy += value; // 4 idle, 5 iowait
    }
    while (i < length && proc.buffer[i] !== 10) i++;
    i++;
    if (aggregate) continue;
    into.ids.push(id);
    into.busy.push(busy);
    into.total.push(total);
  }
  return into;
}

// ---------------------------------------------------------------------------------------
// /proc/meminfo

export interface MemoryInfo {
  totalBytes: number;
  /** MemAvailable: what can be allocated without swapping (free plus reclaimable caches). */
  availableBytes: number;
}

/**
 * Node memory from /proc/meminfo: the same numbers as systeminformation's `mem()` (total,
 * available), read directly because `mem()` costs about 0.27 ms of CPU per call (an async
 * read through the thread pool, then a scan of every line for each of a dozen fields): more
 * than the rest of a sample. Kernels older than 3.14 lack MemAvailable: free + buffers +
 * cached stands in, as in systeminformation.
 */
export function readMemoryInfo(): MemoryInfo {
  const length = proc.read("/proc/meminfo", true);
  const text = proc.buffer.toString("latin1", 0, Math.max(0, length));
  const kib = (name: string): number | undefined => {
    const at = text.indexOf(`\n${name}:`);
    const start = at < 0 ? (text.startsWith(`${name}:`) ? 0 : -1) : at + 1;
    if (start < 0) return undefined;
    const value = /^\S+:\s*(\d+)/.exec(text.slice(start, start + 64))?.[1];
    return value === undefined ? undefined : Number(value) * 1024;
  };
  const totalBytes = kib("MemTotal") ?? 0;
  const availableBytes = kib("MemAvailable") ?? (kib("MemFree") ?? 0) + (kib("Buffers") ?? 0) + (kib("Cached") ?? 0);
  return { totalBytes, availableBytes: Math.min(availableBytes, totalBytes) };
}

// ---------------------------------------------------------------------------------------
// System constants, from the ELF auxiliary vector the kernel gave this process

let auxv: { pageSize: number; clockTicks: number } | undefined;

function readAuxv(): { pageSize: number; clockTicks: number } {
  const values = { pageSize: 4096, clockTicks: 100 };
  const length = proc.read("/proc/self/auxv", false);
  const word = process.arch === "ia32" || process.arch === "arm" ? 4 : 8;
  const little = endianness() === "LE";
  for (let at = 0; at + 2 * word <= length; at += 2 * word) {
    const read = (offset: number): number =>
      word === 4
        ? little
          ? proc.buffer.readUInt32LE(offset)
          : proc.buffer.readUInt32BE(offset)
        : Number(little ? proc.buffer.readBigUInt64LE(offset) : proc.buffer.readBigUInt64BE(offset));
    const type = read(at);
    if (type === 0) break; // AT_NULL
    if (type === 6) values.pageSize = read(at + word); // AT_PAGESZ
    if (type === 17) values.clockTicks = read(at + word); // AT_CLKTCK
  }
  return values;
}

/** The page size in bytes (4 KiB on x86, often 64 KiB on ARM and POWER HPC nodes). */
export function pageSize(): number {
  auxv ??= readAuxv();
  return auxv.pageSize;
}

/** Clock ticks per second (USER_HZ, what `getconf CLK_TCK` prints; 100 nearly everywhere). */
export function clockTicksPerSecond(): number {
  auxv ??= readAuxv();
  return auxv.clockTicks;
}
