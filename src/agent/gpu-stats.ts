/**
 * NVIDIA GPUs through nvidia-smi, as the `gpus` field of a NodeSample:
 *
 *   nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits
 *
 * Contracts:
 * - nvidia-smi is looked up on PATH once, without running anything; when it is not there,
 *   {@link GpuStats.latest} is always undefined (the sample has no `gpus` field).
 * - It runs at most once per `everyMs`, never twice at once, and is killed after
 *   `timeoutMs` (a hung driver must not pile up processes). One run costs tens of
 *   milliseconds of CPU (NVML initialisation; reported figures, no GPU on the development
 *   VM to measure): at a 1 s interval it would alone exceed the agent's budget of 0.5 % of
 *   a core, hence a default of every 5 s. Samples in between carry the last reading
 *   (utilization.gpu is itself nvidia-smi's average over its last sampling period).
 * - A reading older than 3 × `everyMs` (nvidia-smi failing or hanging) is not reported:
 *   no `gpus` rather than stale ones.
 * - A GPU whose utilization is not available (`[N/A]`, e.g. with MIG enabled) is left out
 *   rather than reported idle: odop would otherwise take a busy GPU for a free one.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

export interface GpuReading {
  id: number;
  /** 0..1 */
  utilization: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
}

export const NVIDIA_SMI_ARGS = [
  "--query-gpu=index,utilization.gpu,memory.used,memory.total",
  "--format=csv,noheader,nounits",
] as const;

const MIB = 1024 * 1024;

/**
 * Parses nvidia-smi's csv (noheader, nounits) output: `index, utilization %, used MiB,
 * total MiB` per line. Lines that do not hold four numbers are skipped.
 */
export function parseNvidiaSmi(text: string): GpuReading[] {
  const gpus: GpuReading[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length !== 4 || !fields.every((f) => /^\d+(\.\d+)?$/.test(f))) continue;
    const [index, utilization, used, total] = fields.map(Number) as [number, number, number, number];
    if (!Number.isInteger(index) || index > 1024) continue;
    gpus.push({
      id: index,
      utilization: Math.min(1, utilization / 100),
      memoryUsedBytes: Math.round(used * MIB),
      memoryTotalBytes: Math.round(total * MIB),
    });
  }
  return gpus;
}

/** The first executable `name` on `path` (a PATH value); undefined when none. */
export function findOnPath(name: string, path = process.env["PATH"] ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface GpuStatsOptions {
  /** The nvidia-smi to run; default: looked up on PATH. null: no GPUs (switched off). */
  command?: string | null;
  /** Least time between two runs; default 5000 ms. */
  everyMs?: number;
  /** A run is killed after this; default 5000 ms. */
  timeoutMs?: number;
  /** Monotonic milliseconds; performance.now by default. */
  now?: () => number;
  /** Told once per streak of failed runs, with why (and once if no GPU line can be read). */
  onError?: (message: string) => void;
}

export class GpuStats {
  readonly #command: string | undefined;
  readonly #everyMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #onError: (message: string) => void;
  #last: { time: number; gpus: GpuReading[] } | undefined;
  #startedAt = Number.NEGATIVE_INFINITY;
  #running: Promise<void> | undefined;
  #failing = false;
  #unreadable = false;

  constructor(options: GpuStatsOptions = {}) {
    this.#command = options.command === null ? undefined : (options.command ?? findOnPath("nvidia-smi"));
    this.#everyMs = options.everyMs ?? 5000;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#now = options.now ?? (() => performance.now());
    this.#onError = options.onError ?? (() => {});
  }

  /** Whether nvidia-smi was found. */
  get available(): boolean {
    return this.#command !== undefined;
  }

  /**
   * The last reading (undefined: no nvidia-smi, no reading yet, no readable GPU, or a stale
   * reading), and starts
   * a new run in the background when the last one started `everyMs` ago or more.
   */
  latest(): GpuReading[] | undefined {
    if (this.#command === undefined) return undefined;
    const now = this.#now();
    if (this.#running === undefined && now - this.#startedAt >= this.#everyMs) {
      this.#startedAt = now;
      this.#running = this.#run(this.#command).finally(() => {
        this.#running = undefined;
      });
    }
    const last = this.#last;
    return last !== undefined && last.gpus.length > 0 && now - last.time <= 3 * this.#everyMs ? last.gpus : undefined;
  }

  /** Resolves when the run in progress (if any) has ended. */
  async settled(): Promise<void> {
    await this.#running;
  }

  #run(command: string): Promise<void> {
    return new Promise((resolve) => {
      execFile(
        command,
        NVIDIA_SMI_ARGS,
        { timeout: this.#timeoutMs, killSignal: "SIGKILL", maxBuffer: 1024 * 1024, encoding: "utf8" },
        (error, stdout) => {
          if (error === null) {
            const gpus = parseNvidiaSmi(stdout);
            this.#last = { time: this.#now(), gpus };
            this.#failing = false;
            // GPUs listed but none readable ([N/A] utilization): say so once.
            if (gpus.length === 0 && stdout.trim() !== "" && !this.#unreadable) {
              this.#unreadable = true;
              this.#onError(`nvidia-smi lists GPUs but none with a readable utilization: ${stdout.slice(0, 200)}`);
            }
          } else if (!this.#failing) {
            this.#failing = true;
            this.#onError(error.message);
          }
          resolve();
        },
      );
    });
  }
}
