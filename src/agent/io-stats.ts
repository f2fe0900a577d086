/**
 * Disk and network throughput of the node over the interval between two calls, as the
 * `io` field of a NodeSample: bytes per second read from and written to disks, received
 * and transmitted on network interfaces.
 *
 * Read from /proc/diskstats and /proc/net/dev directly (two small synchronous reads, a few
 * microseconds), not through systeminformation: its `disksIO()` forks a shell pipeline
 * (`lsblk | grep | sed | awk ...; cat /sys/block/X/stat`) and its `networkStats()` forks
 * `cat /sys/class/net/X/...` on every call; a fork per second alone costs more than the
 * whole sample.
 *
 * What counts, so that one byte is counted once:
 * - Disks: whole physical block devices, i.e. /sys/block entries whose device is not under
 *   /sys/devices/virtual (so not partitions, which /sys/block does not list, and not
 *   loop, ram, zram, dm-* or md* devices, which sit on top of the physical ones). Sectors in
 *   /proc/diskstats are 512 bytes whatever the device's own sector size.
 * - Network: physical interfaces, by the same rule on /sys/class/net (not lo, veth, bridges
 *   or tunnels, whose traffic also crosses a physical interface). Where no interface is
 *   physical (inside a container's network namespace), every interface but lo counts.
 * The device lists are read once and again every 60 calls (hot-plugged disks).
 *
 * A counter that went backwards (a device removed and another added under its name, a
 * 32-bit counter that wrapped) adds nothing for that interval.
 */
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { ProcReader } from "./proc-file.ts";

export interface IoRates {
  diskReadBytesPerSecond: number;
  diskWriteBytesPerSecond: number;
  networkReceiveBytesPerSecond: number;
  networkTransmitBytesPerSecond: number;
}

/** Cumulative byte counters of one device. */
export interface Counters {
  a: number;
  b: number;
}

const SECTOR_BYTES = 512;
const RESCAN_EVERY = 60;

/**
 * Bytes read and written (`a`, `b`) per device of /proc/diskstats text, for the devices in
 * `disks` only. Fields: major minor name reads merged sectorsRead msReading writes merged
 * sectorsWritten ...
 */
export function parseDiskStats(text: string, disks: ReadonlySet<string>): Map<string, Counters> {
  const out = new Map<string, Counters>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    const name = f[2];
    if (name === undefined || !disks.has(name) || f.length < 10) continue;
    const read = Number(f[5]);
    const written = Number(f[9]);
    if (Number.isFinite(read) && Number.isFinite(written)) out.set(name, { a: read * SECTOR_BYTES, b: written * SECTOR_BYTES });
  }
  return out;
}

/**
 * Bytes received and transmitted (`a`, `b`) per interface of /proc/net/dev text; with
 * `interfaces`, only those, else every interface but lo. Lines: `name: rxBytes rxPackets
 * errs drop fifo frame compressed multicast txBytes ...` (no space after the colon when
 * the counter is wide).
 */
export function parseNetDev(text: string, interfaces?: ReadonlySet<string>): Map<string, Counters> {
  const out = new Map<string, Counters>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === "lo" || (interfaces !== undefined && !interfaces.has(name))) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/);
    const rx = Number(f[0]);
    const tx = Number(f[8]);
    if (f.length >= 9 && Number.isFinite(rx) && Number.isFinite(tx)) out.set(name, { a: rx, b: tx });
  }
  return out;
}

/** Summed per-second increase of `a` and `b` from `before` to `after` over `seconds`. */
export function rates(before: ReadonlyMap<string, Counters>, after: ReadonlyMap<string, Counters>, seconds: number): Counters {
  let a = 0;
  let b = 0;
  for (const [name, now] of after) {
    const then = before.get(name);
    if (then === undefined) continue; // new device: its first reading is a baseline
    if (now.a >= then.a) a += now.a - then.a;
    if (now.b >= then.b) b += now.b - then.b;
  }
  return seconds > 0 ? { a: a / seconds, b: b / seconds } : { a: 0, b: 0 };
}

/**
 * Names in a /sys class directory (/sys/block, /sys/class/net) whose link does not point
 * under devices/virtual; with `all`, every name. [] when the directory cannot be read.
 */
export function physicalDevices(directory: string, all = false): string[] {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return [];
  }
  if (all) return names;
  return names.filter((name) => {
    try {
      return !readlinkSync(join(directory, name)).includes("/devices/virtual/");
    } catch {
      return false; // not a link: not a device entry
    }
  });
}

export interface IoStatsOptions {
  /** Where /proc and /sys are (tests); default "/". */
  root?: string;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
}

export class IoStats {
  readonly #proc = new ProcReader();
  readonly #root: string;
  readonly #now: () => number;
  #disks = new Set<string>();
  #interfaces: Set<string> | undefined;
  #calls = 0;
  #previous: { time: number; disk: Map<string, Counters>; net: Map<string, Counters> } | undefined;

  constructor(options: IoStatsOptions = {}) {
    this.#root = options.root ?? "/";
    this.#now = options.now ?? (() => performance.now());
  }

  /** Rates since the previous call; undefined on the first (the baseline) or when /proc cannot be read. */
  read(): IoRates | undefined {
    if (this.#calls++ % RESCAN_EVERY === 0) this.#scanDevices();
    const time = this.#now();
    const disk = parseDiskStats(this.#text("proc/diskstats"), this.#disks);
    const net = parseNetDev(this.#text("proc/net/dev"), this.#interfaces);
    const previous = this.#previous;
    this.#previous = { time, disk, net };
    if (previous === undefined) return undefined;
    const seconds = (time - previous.time) / 1000;
    const d = rates(previous.disk, disk, seconds);
    const n = rates(previous.net, net, seconds);
    return {
      diskReadBytesPerSecond: d.a,
      diskWriteBytesPerSecond: d.b,
      networkReceiveBytesPerSecond: n.a,
      networkTransmitBytesPerSecond: n.b,
    };
  }

  #scanDevices(): void {
    const block = join(this.#root, "sys/block");
    const physical = physicalDevices(block);
    this.#disks = new Set(
      physical.length > 0 ? physical : physicalDevices(block, true).filter((n) => !/^(loop|ram|zram)\d/.test(n)),
    );
    const nics = physicalDevices(join(this.#root, "sys/class/net"));
    this.#interfaces = nics.length > 0 ? new Set(nics) : undefined;
  }

  #text(path: string): string {
    const length = this.#proc.read(join(this.#root, path), false);
    return length < 0 ? "" : this.#proc.buffer.toString("latin1", 0, length);
  }
}
