/**
 * The local backend: each stage is a child process in its own session and process
 * group, pinned to its cores (taskset), at idle CPU priority (SCHED_IDLE through chrt
 * where the kernel allows it, nice 19 otherwise) and idle I/O priority (ionice -c 3).
 *
 * Every stage runs under a small bash wrapper that writes its pid when it starts and
 * its exit code and CPU times when it ends, into the stage's state folder. Stages do
 * not depend on the controller: a killed `odop run` leaves them running, and a new one
 * re-adopts them from those files (checking the process's ODOP_STAGE_ID environment
 * variable, so a recycled pid is never mistaken for the stage).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Backend, StagePlan, StageRef, StageState } from "../types.ts";
import { formatCpuset } from "../../api/cpuset.ts";

const execFileAsync = promisify(execFile);
/** How long pause() waits for every process of a stage to have stopped. */
const PAUSE_WAIT_MS = 2_000;

/**
 * Writes the pid, runs the stage, records exit code and CPU times. $1.. is the stage's argv.
 *
 * First it lowers its session's autogroup to nice 19. Kernels with autogroup scheduling
 * (sched_autogroup_enabled, common on HPC and desktop distributions) share CPU fairly
 * between sessions before looking at priorities inside them; each stage is a new session
 * (so that its process group outlives odop), and without this it would take half of a
 * core from the main application despite SCHED_IDLE (measured with bench/harvest).
 */
const WRAPPER = [
  "{ echo 19 > /proc/self/autogroup; } 2>/dev/null",
  'printf "%s\\n" "$$" > "$ODOP_STATE.pid.tmp" && mv -f "$ODOP_STATE.pid.tmp" "$ODOP_STATE.pid"',
  '"$@"',
  "code=$?",
  'times > "$ODOP_STATE.times" 2>/dev/null',
  'printf "%s\\n" "$code" > "$ODOP_STATE.exit.tmp" && mv -f "$ODOP_STATE.exit.tmp" "$ODOP_STATE.exit"',
  'exit "$code"',
].join("\n");

export type Priority = { cpu: "sched-idle" | "nice" | "none"; io: boolean };

export type LocalBackendOptions = {
  /** Folder under which each execution's state lives: <stateRoot>/<namespace>/<name>/. */
  stateRoot: string;
  /** How stages are deprioritised; probe it once with detectPriority(). */
  priority: Priority;
  /** Grace between SIGTERM and SIGKILL when stopping. */
  stopGraceMs?: number;
};

export class LocalBackend implements Backend {
  readonly kind = "local" as const;
  readonly #options: LocalBackendOptions;
  readonly #children = new Map<string, ChildProcess>();
  readonly #listeners = new Set<(ref: StageRef) => void>();

  constructor(options: LocalBackendOptions) {
    this.#options = options;
  }

  /** The state folder of an execution ("namespace/name"). */
  executionDir(execution: string): string {
    return join(this.#options.stateRoot, ...execution.split("/"));
  }

  #statePrefix(ref: StageRef): string {
    return join(this.executionDir(ref.execution), "state", `${ref.stage}-${ref.attempt}`);
  }

  async start(plan: StagePlan): Promise<StageState> {
    const existing = await this.observe(plan);
    if (existing.state !== "absent") return existing;
    const prefix = this.#statePrefix(plan);
    mkdirSync(join(this.executionDir(plan.execution), "state"), { recursive: true });
    writeFileSync(`${prefix}.intent`, `${new Date().toISOString()}\n`);

    const argv = [...this.#priorityPrefix(plan), "taskset", "-c", formatCpuset(plan.cores), "bash", "-c", WRAPPER, "odop-stage", ...plan.argv];
    const [program, ...args] = argv as [string, ...string[]];
    const logs = join(plan.cwd, "logs");
    mkdirSync(logs, { recursive: true });
    const out = openSync(join(logs, `${plan.stage}-${plan.attempt}.out`), "a");
    const err = openSync(join(logs, `${plan.stage}-${plan.attempt}.err`), "a");
    let child: ChildProcess;
    try {
      child = spawn(program, args, {
        cwd: plan.cwd,
        env: { ...plan.env, ODOP_STATE: prefix, ODOP_STAGE_ID: stageId(plan) },
        detached: true,
        stdio: ["ignore", out, err],
      });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    const key = stageId(plan);
    this.#children.set(key, child);
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    child.once("exit", () => {
      this.#children.delete(key);
      for (const listener of this.#listeners) listener({ execution: plan.execution, stage: plan.stage, attempt: plan.attempt });
    });
    child.unref();
    // Wait until the wrapper has recorded its pid (or the stage already ended), so that
    // from here on observe() can always find the stage, even from another process.
    for (let i = 0; i < 400 && !existsSync(`${prefix}.pid`); i += 1) {
      const done = await Promise.race([exited.then(() => true), sleep(5).then(() => false)]);
      if (done) break;
    }
    if (!existsSync(`${prefix}.pid`) && !existsSync(`${prefix}.exit`)) {
      const spawnError = await Promise.race([
        new Promise<Error>((resolve) => child.once("error", resolve)),
        sleep(50).then(() => undefined),
      ]);
      if (spawnError !== undefined) throw new Error(`cannot start the ${plan.stage} stage: ${spawnError.message}`);
    }
    return this.observe(plan);
  }

  async observe(ref: StageRef): Promise<StageState> {
    await Promise.resolve();
    const prefix = this.#statePrefix(ref);
    const exit = readText(`${prefix}.exit`);
    if (exit !== undefined) {
      const cpuSeconds = parseTimes(readText(`${prefix}.times`));
      return { state: "exited", exitCode: Number(exit.trim()), ...(cpuSeconds === undefined ? {} : { cpuSeconds }) };
    }
    const pid = Number(readText(`${prefix}.pid`)?.trim() ?? Number.NaN);
    if (Number.isInteger(pid) && isStage(pid, stageId(ref))) {
      const pids = groupMembers(pid);
      return allStopped(pids) ? { state: "paused", pids } : { state: "running", pids };
    }
    if (existsSync(`${prefix}.stopped`)) return { state: "stopped" };
    if (Number.isInteger(pid)) {
      return { state: "lost", message: `the ${ref.stage} stage (pid ${pid}) ended without recording an exit code` };
    }
    if (existsSync(`${prefix}.intent`)) {
      // Killed between spawning and the wrapper writing its pid: look for the stage itself.
      const found = findStage(stageId(ref));
      if (found !== undefined) return { state: "running", pids: groupMembers(found) };
    }
    return { state: "absent" };
  }

  /**
   * Sends SIGSTOP to the stage's process group and waits, bounded, until every process
   * of it has stopped. A process stops only when the kernel next runs it: a SCHED_IDLE
   * stage on busy cores may take a while, and it makes no progress meanwhile (it must
   * take the signal before it runs any of its own code). observe() says "paused" only
   * once every process is stopped.
   */
  async pause(ref: StageRef): Promise<void> {
    const pid = await this.#leader(ref);
    if (pid === undefined) return;
    signalGroup(pid, "SIGSTOP");
    for (let waited = 0; waited < PAUSE_WAIT_MS && !allStopped(groupMembers(pid)); waited += 20) await sleep(20);
  }

  async resume(ref: StageRef, cores: readonly number[]): Promise<void> {
    const pid = await this.#leader(ref);
    if (pid === undefined) return;
    const cpuset = formatCpuset(cores);
    // Re-pin every thread of every process of the stage before letting it run again.
    await Promise.all(
      groupMembers(pid).map((member) => execFileAsync("taskset", ["-a", "-p", "-c", cpuset, String(member)]).catch(() => undefined)),
    );
    signalGroup(pid, "SIGCONT");
  }

  async stop(ref: StageRef): Promise<void> {
    const prefix = this.#statePrefix(ref);
    const pid = await this.#leader(ref);
    if (pid === undefined) return;
    mkdirSync(join(this.executionDir(ref.execution), "state"), { recursive: true });
    writeFileSync(`${prefix}.stopped`, `${new Date().toISOString()}\n`);
    signalGroup(pid, "SIGCONT"); // a stopped process cannot act on SIGTERM
    signalGroup(pid, "SIGTERM");
    const grace = this.#options.stopGraceMs ?? 5000;
    for (let waited = 0; waited < grace && isStage(pid, stageId(ref)); waited += 20) await sleep(20);
    if (isStage(pid, stageId(ref)) || groupMembers(pid).length > 0) signalGroup(pid, "SIGKILL");
    for (let i = 0; i < 250 && groupMembers(pid).length > 0; i += 1) await sleep(20);
  }

  onChange(listener: (ref: StageRef) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Process-group leaders of the stages this backend runs now (odop's own work, for the sampler). */
  runningLeaders(): number[] {
    return [...this.#children.values()].map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  async #leader(ref: StageRef): Promise<number | undefined> {
    const state = await this.observe(ref);
    if (state.state !== "running" && state.state !== "paused") return undefined;
    const pid = Number(readText(`${this.#statePrefix(ref)}.pid`)?.trim() ?? Number.NaN);
    return Number.isInteger(pid) ? pid : findStage(stageId(ref));
  }

  #priorityPrefix(plan: StagePlan): string[] {
    const { cpu, io } = this.#options.priority;
    const prefix: string[] = [];
    if (cpu === "sched-idle") prefix.push("chrt", "--idle", "0");
    else if (cpu === "nice") prefix.push("nice", "-n", "19");
    if (io || plan.ioBound) prefix.push("ionice", "-c", "3");
    return prefix;
  }
}

/** Finds out once what this machine allows: SCHED_IDLE via chrt, else nice; ionice. */
export async function detectPriority(): Promise<Priority> {
  const works = async (argv: string[]) => {
    try {
      await execFileAsync(argv[0] ?? "", [...argv.slice(1), "true"]);
      return true;
    } catch {
      return false;
    }
  };
  const cpu = (await works(["chrt", "--idle", "0"])) ? "sched-idle" : (await works(["nice", "-n", "19"])) ? "nice" : "none";
  return { cpu, io: await works(["ionice", "-c", "3"]) };
}

function stageId(ref: StageRef): string {
  return `${ref.execution}/${ref.stage}/${ref.attempt}`;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The state letter of /proc/PID/stat (R, S, D, T, Z, ...), or undefined when gone. */
function processState(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}

/** True when `pid` is alive (not a zombie) and carries this stage's id in its environment. */
function isStage(pid: number, id: string): boolean {
  const state = processState(pid);
  if (state === undefined || state === "Z" || state === "X") return false;
  const environ = readText(`/proc/${pid}/environ`);
  return environ !== undefined && environ.split("\0").includes(`ODOP_STAGE_ID=${id}`);
}

/** Scans /proc for the process-group leader of a stage (used only after a crash). */
function findStage(id: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    if (isStage(pid, id) && processGroup(pid) === pid) return pid;
  }
  return undefined;
}

function processGroup(pid: number): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[2]);
}

/** Live (non-zombie) processes of the process group led by `pgid`. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const state = processState(pid);
    if (state === undefined || state === "Z") continue;
    if (processGroup(pid) === pgid) members.push(pid);
  }
  return members;
}

/** Every process is stopped (T); an empty group is not "stopped", it is gone. */
function allStopped(pids: readonly number[]): boolean {
  return pids.length > 0 && pids.every((p) => {
    const state = processState(p);
    return state === "T" || state === undefined; // one that just exited is not running
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone already.
  }
}

/** bash `times`: the second line holds the children's user and system time, e.g. "0m1.250s 0m0.040s". */
function parseTimes(text: string | undefined): number | undefined {
  const line = text?.split("\n")[1];
  if (line === undefined) return undefined;
  const seconds = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return seconds.length === 2 ? (seconds[0] ?? 0) + (seconds[1] ?? 0) : undefined;
}
