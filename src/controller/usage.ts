/**
 * What executions really use, measured while they run: peak resident memory and CPU
 * time of each stage's process tree, read from /proc once per sampling tick. The CPU
 * time a stage reports itself at exit (the local backend's wrapper) is more exact and
 * wins when present; the peak memory can only be seen while it runs.
 */
import { descendants, processRss, readProcStat, clockTicksPerSecond } from "../agent/procfs.ts";

type Tracked = { roots: number[]; peakRssBytes: number; cpuTicksSeen: Map<number, number> };

export class UsageTracker {
  readonly #tracked = new Map<string, Tracked>();

  /** Starts or updates tracking of an execution's stage processes. */
  track(key: string, roots: readonly number[]): void {
    const t = this.#tracked.get(key);
    if (t === undefined) this.#tracked.set(key, { roots: [...roots], peakRssBytes: 0, cpuTicksSeen: new Map() });
    else t.roots = [...roots];
  }

  /** Reads /proc for every tracked execution; call once per sampling tick. */
  sample(): void {
    for (const t of this.#tracked.values()) {
      let rss = 0;
      for (const pid of descendants(t.roots)) {
        rss += processRss(pid) ?? 0;
        const stat = readProcStat(pid);
        if (stat !== undefined) t.cpuTicksSeen.set(pid, Math.max(t.cpuTicksSeen.get(pid) ?? 0, stat.cpuTicks));
      }
      t.peakRssBytes = Math.max(t.peakRssBytes, rss);
    }
  }

  peak(key: string): { peakRssBytes: number; cpuSeconds: number } {
    const t = this.#tracked.get(key);
    if (t === undefined) return { peakRssBytes: 0, cpuSeconds: 0 };
    let ticks = 0;
    for (const v of t.cpuTicksSeen.values()) ticks += v;
    return { peakRssBytes: t.peakRssBytes, cpuSeconds: ticks / clockTicksPerSecond() };
  }

  forget(key: string): void {
    this.#tracked.delete(key);
  }

  /** Root pids of everything tracked: odop's own work, for the sampler. */
  roots(): number[] {
    return [...this.#tracked.values()].flatMap((t) => t.roots);
  }
}
