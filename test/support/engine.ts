/**
 * An embedded engine for integration tests: real journalled store, real local backend
 * (processes), real sampler (/proc), real clock; only the scheduling thresholds are
 * shortened so tests do not wait seconds for a hold window.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import { detectPriority, LocalBackend } from "../../src/backends/local/local-backend.ts";
import type { Backend, StageRef } from "../../src/backends/types.ts";
import { systemClock } from "../../src/controller/clock.ts";
import { Engine } from "../../src/controller/engine.ts";
import { HttpNotifier } from "../../src/controller/notifier.ts";
import { StagePlanner } from "../../src/controller/stage-plans.ts";
import { localFileProbe } from "../../src/agent/file-probe.ts";
import { LocalNodeSource, type NodeSource } from "../../src/controller/node-source.ts";
import { UsageTracker } from "../../src/controller/usage.ts";
import { type MainSelector, Sampler } from "../../src/agent/sampler.ts";
import { NodeWindow, type WindowConfig } from "../../src/scheduler/window.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import type { Store } from "../../src/store/types.ts";
import type { OpExecution } from "../../src/api/opexecution.ts";
import type { OpTask } from "../../src/api/optask.ts";

export const ODOP_CLI = join(import.meta.dirname, "../../src/cli/odop.ts");

export type TestEngine = {
  engine: Engine;
  store: EmbeddedStore;
  root: string;
  stop: (interrupt?: boolean) => Promise<void>;
};

export async function startEngine(options: {
  root?: string;
  main?: () => MainSelector | undefined;
  window?: Partial<WindowConfig>;
  notifyKey?: string;
  /** Gives the local backend a cleanup hook (it has none of its own), to see when it is called. */
  onCleanup?: (ref: StageRef, succeeded: boolean) => void;
} = {}): Promise<TestEngine> {
  const root = options.root ?? mkdtempSync(join(tmpdir(), "odop-engine-"));
  const log = pino({ level: process.env["ODOP_TEST_LOG"] ?? "silent" });
  const store = new EmbeddedStore({ folder: join(root, "store") });
  const backend = new LocalBackend({ stateRoot: join(root, "executions"), priority: await detectPriority(), stopGraceMs: 1000 });
  const onCleanup = options.onCleanup;
  if (onCleanup !== undefined) {
    Object.assign(backend, { cleanup: (ref: StageRef, succeeded: boolean) => Promise.resolve(onCleanup(ref, succeeded)) });
  }
  const planner = new StagePlanner({
    executionsRoot: join(root, "executions"),
    odopCommand: [process.execPath, ODOP_CLI],
    baseEnv: process.env,
    secretsDir: join(root, "secrets"),
    pythonPath: [],
  });
  const usage = new UsageTracker();
  const node = hostname();
  // By default the "main application" is a sleeping process: the load of other tests on
  // this machine must not hold executions back.
  const main = options.main ?? (() => ({ pids: [idleMain()] }));
  const sampler = new Sampler({ node, main, odopRoots: () => usage.roots() });
  return runEngine({
    root,
    store,
    log,
    backend,
    planner,
    nodes: new LocalNodeSource(new NodeWindow({ name: node, config: { holdMs: 600, idleThreshold: 0.3, busyThreshold: 0.6, ...options.window } }), () => sampler.sample()),
    usage,
    ...(options.notifyKey === undefined ? {} : { notifyKey: options.notifyKey }),
  });
}

/** Starts an engine on the given parts with the tests' settings (real clock, 250 ms sampling); stop() closes `onStop` then the store. */
export function runEngine(parts: {
  root: string;
  store: EmbeddedStore;
  log: Logger;
  backend: Backend;
  planner: StagePlanner;
  nodes: NodeSource;
  usage?: UsageTracker;
  notifyKey?: string;
  onStop?: () => void;
}): TestEngine {
  const { root, store, log } = parts;
  const engine = new Engine({
    store,
    backend: parts.backend,
    planner: parts.planner,
    clock: systemClock,
    log,
    notifier: new HttpNotifier({ key: parts.notifyKey, log, onFailure: () => {} }),
    files: localFileProbe,
    nodes: parts.nodes,
    ...(parts.usage === undefined ? {} : { usage: parts.usage }),
    sampleIntervalMs: 250,
  });
  engine.start();
  let stopped = false;
  return {
    engine,
    store,
    root,
    stop: async (interrupt = true) => {
      if (stopped) return;
      stopped = true;
      await engine.stop({ interrupt });
      parts.onStop?.();
      await store.close();
    },
  };
}

/** Polls `get` until it returns something, or fails after `timeoutMs`. */
export async function eventually<T>(get: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await get();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A manual OpTask in namespace default with `spec` over test defaults (run `true`, pause on contention, one at a time). */
export function testTask(name: string, spec: Partial<OpTask["spec"]>): OpTask {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name, namespace: "default" },
    spec: {
      trigger: { manual: {} },
      run: { command: ["true"] },
      policy: { priority: 0, onContention: "pause", concurrency: 1 },
      suspend: false,
      ...spec,
    },
  };
}

/** An OpExecution of `taskName` as a person creates one (action Run). */
export function manualExecution(taskName: string, name: string, executionId = "6f1c2b0e-3d4a-4f5b-8c9d-0e1f2a3b4c5d"): OpExecution {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpExecution",
    metadata: { name, namespace: "default" },
    spec: { taskRef: { name: taskName }, executionId, trigger: { reason: "Manual" }, action: "Run" },
  };
}

/** Waits until execution `name` (namespace default) is in one of the phases `want` and `also` holds. */
export function phaseIn(store: Store, name: string, want: string[], also: (e: OpExecution) => boolean = () => true, timeoutMs = 20_000): Promise<OpExecution> {
  return eventually(
    async () => {
      const e = await store.get("OpExecution", "default", name);
      return e !== undefined && want.includes(e.status?.phase ?? "") && also(e) ? e : undefined;
    },
    `${name} in ${want.join("|")}`,
    timeoutMs,
  );
}

let idle: ChildProcess | undefined;
/** A process that does nothing, standing in for a main application that leaves every core idle. */
function idleMain(): number {
  if (idle === undefined || idle.exitCode !== null) {
    idle = spawn("sleep", ["3600"], { stdio: "ignore" });
    idle.unref();
    process.once("exit", () => idle?.kill());
  }
  return idle.pid ?? 0;
}
