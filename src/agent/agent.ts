/**
 * `odop agent`: the node agent assembled. Every `intervalMs` it takes one NodeSample
 * (sampler.ts, with `io` from io-stats.ts and `gpus` from gpu-stats.ts), reports the
 * trigger folders the controller asked it to watch (folder-reports.ts), and pushes both
 * to the controller (pusher.ts); optionally it serves the freezer API of the Kubernetes
 * backend (freezer-server.ts).
 *
 * Contracts:
 * - Ticks are on a fixed grid (start + k × interval); a tick that overruns skips the grid
 *   points it missed rather than sampling twice in a row. A failing sample is logged once
 *   per distinct message and skipped; the agent keeps going.
 * - The controller's reply says which folders to watch; a change of that list, or a change
 *   in a watched folder (fs.watch), sends the folders' reports at once.
 * - {@link startAgent} fails fast, with a message naming the option, when the token file
 *   or CA file cannot be read or the freezer cannot listen.
 * - {@link runAgent} stops on SIGTERM or SIGINT: no new sample, the freezer closes, and what
 *   is buffered is sent for at most `shutdownFlushMs`.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { NodeSample } from "../api/sample.ts";
import { type AgentOptions, type AgentOptionsInput, parseAgentOptions } from "./agent-options.ts";
import { FolderWatcher } from "./folder-reports.ts";
import { type FreezerServer, startFreezerServer } from "./freezer-server.ts";
import { GpuStats } from "./gpu-stats.ts";
import { IoStats } from "./io-stats.ts";
import { MainProcesses } from "./main-processes.ts";
import { type AgentLog, AgentPusher, type PusherStats } from "./pusher.ts";
import { Sampler } from "./sampler.ts";

export { AgentOptions, type AgentOptionsInput, parseAgentOptions } from "./agent-options.ts";

export interface Agent {
  node: string;
  /** The pusher's instance id (a new one per process). */
  instance: string;
  /** Where the freezer API listens, when it is on. */
  freezer: FreezerServer["address"] | undefined;
  stats(): PusherStats;
  /** Stops sampling, closes the freezer, flushes for at most shutdownFlushMs; resolves with the final counters. */
  stop(): Promise<PusherStats>;
}

export interface AgentEnvironment {
  /** odop's version, sent with every push. */
  version?: string;
  /** Default: process.env (SLURMD_NODENAME). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Starts the agent; throws (naming the option) when it cannot start. */
export async function startAgent(input: AgentOptions | AgentOptionsInput, log: AgentLog, environment: AgentEnvironment = {}): Promise<Agent> {
  const parsed = parseAgentOptions(input);
  if (!parsed.ok) throw new Error(`invalid agent options:\n  ${parsed.problems.join("\n  ")}`);
  const o = parsed.options;
  const env = environment.env ?? process.env;
  const node = o.node ?? (env["SLURMD_NODENAME"] || hostname());

  const token = tokenSource(o);
  token(); // fail now rather than at the first push
  const ca = o.controllerCaFile === undefined ? undefined : readOption("controllerCaFile", o.controllerCaFile);

  const main = new MainProcesses(o.main ?? {});
  const sampler = new Sampler({ node, main: main.main, odopRoots: main.odopRoots });
  const io = new IoStats();
  const gpus = new GpuStats({
    ...(o.gpu === "off" ? { command: null } : {}),
    everyMs: Math.max(o.gpuEveryMs, o.intervalMs),
    timeoutMs: Math.min(5000, Math.max(o.gpuEveryMs, o.intervalMs)),
    onError: (message) => log.warn({ error: message }, "cannot read the GPUs with nvidia-smi"),
  });
  const folders = new FolderWatcher({ onChange: () => pusher.reportFolders(folders.reports(), true) });
  const pusher = new AgentPusher({
    controller: o.controller,
    token,
    node,
    version: environment.version ?? "unknown",
    sampleIntervalMs: o.intervalMs,
    batchSamples: o.batchSamples,
    batchMs: o.batchMs,
    bufferSamples: o.bufferSamples,
    timeoutMs: o.requestTimeoutMs,
    ...(ca === undefined ? {} : { ca }),
    log,
    onReply: (reply) => {
      if (folders.setWatch(reply.watch)) {
        log.info({ folders: reply.watch.map((w) => `${w.folder}/${w.pattern}`) }, "watching trigger folders");
        pusher.reportFolders(folders.reports(), true);
      }
    },
  });

  let freezer: FreezerServer | undefined;
  if (o.freezer !== undefined) {
    const f = o.freezer;
    const tls =
      f.tlsCertFile === undefined || f.tlsKeyFile === undefined
        ? undefined
        : { cert: readOption("freezer.tlsCertFile", f.tlsCertFile), key: readOption("freezer.tlsKeyFile", f.tlsKeyFile) };
    try {
      freezer = await startFreezerServer({
        host: f.listen.host,
        port: f.listen.port,
        token,
        ...(tls === undefined ? {} : { tls }),
        ...(f.cpuManagerState === undefined ? {} : { cpuManagerState: f.cpuManagerState }),
        log,
      });
    } catch (error) {
      pusher.close();
      throw new Error(`freezer.listen: cannot listen on ${f.listen.host}:${f.listen.port}: ${(error as Error).message}`, { cause: error });
    }
  }

  io.read(); // baseline: the first sample's io covers the time since start
  gpus.latest(); // first nvidia-smi run, in the background
  let lastProblem: string | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  const started = performance.now();
  let k = 0;

  async function tick(): Promise<void> {
    try {
      const sample = await sampler.sample();
      if (stopped) return;
      const rates = io.read();
      const readings = gpus.latest();
      // Shares to 1e-4 of a core: far below what 10 ms ticks resolve, and a third less for the controller to parse.
      const cores = sample.cores.map((c) => ({ id: c.id, total: round4(c.total), main: round4(c.main), odop: round4(c.odop) }));
      const full: NodeSample = { ...sample, cores, ...(rates === undefined ? {} : { io: rates }), ...(readings === undefined ? {} : { gpus: readings }) };
      if (folders.watching.length > 0) pusher.reportFolders(folders.reports());
      pusher.push(full);
      if (lastProblem !== undefined) log.info({}, "sampling works again");
      lastProblem = undefined;
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      if (problem !== lastProblem) log.error({ error: problem }, "cannot take a sample: skipping it");
      lastProblem = problem;
    }
  }

  function schedule(): void {
    if (stopped) return;
    const now = performance.now() - started;
    k = Math.max(k + 1, Math.ceil(now / o.intervalMs));
    timer = setTimeout(() => {
      ticking = tick().finally(() => {
        ticking = undefined;
        schedule();
      });
    }, k * o.intervalMs - now);
  }
  ticking = tick().finally(() => {
    ticking = undefined;
    schedule();
  });

  log.info(
    { node, controller: o.controller, intervalMs: o.intervalMs, instance: pusher.instance, main: o.main ?? "whole node", gpus: gpus.available, freezer: freezer?.address },
    "agent started",
  );

  return {
    node,
    instance: pusher.instance,
    freezer: freezer?.address,
    stats: () => pusher.stats(),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await ticking;
      folders.close();
      await freezer?.close();
      await gpus.settled();
      const flushed = await pusher.flush(o.shutdownFlushMs);
      pusher.close();
      const stats = pusher.stats();
      if (flushed) log.info({ ...stats }, "agent stopped");
      else log.warn({ ...stats, shutdownFlushMs: o.shutdownFlushMs }, "agent stopped with samples the controller did not take");
      return stats;
    },
  };
}

/** Runs the agent until SIGTERM or SIGINT, then stops it cleanly; resolves with the final counters. */
export async function runAgent(input: AgentOptions | AgentOptionsInput, log: AgentLog, environment: AgentEnvironment = {}): Promise<PusherStats> {
  const agent = await startAgent(input, log, environment);
  // After the first signal both handlers go: a second one terminates at once (the default).
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve(signal);
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
  log.info({ signal }, "agent stopping");
  return agent.stop();
}

/** The bearer token: the option, or the file read again on every use (a rotated Secret applies). */
function tokenSource(o: AgentOptions): () => string {
  if (o.token !== undefined) {
    const token = o.token;
    return () => token;
  }
  const file = o.tokenFile ?? "";
  return () => {
    const token = readOption("tokenFile", file).trim();
    if (token === "") throw new Error(`tokenFile: ${file} is empty`);
    return token;
  };
}

function readOption(option: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new Error(`${option}: cannot read ${path} (${code}): check the path and that the agent may read it`, { cause: error });
  }
}

function round4(share: number): number {
  return Math.round(share * 10_000) / 10_000;
}
