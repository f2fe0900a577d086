// Real child processes for the agent tests. Every child leads its own process group, so
// killing the group also ends the grandchildren a shell started.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export const BUSY_LOOP = "while :; do :; done";

export class Children {
  readonly #all: ChildProcess[] = [];

  /** Starts `command` detached (its own process group) with no stdio; `env` is added to ours. */
  spawn(command: string, args: readonly string[], env?: Record<string, string>): ChildProcess & { pid: number } {
    const child = spawn(command, args, { detached: true, stdio: "ignore", ...(env === undefined ? {} : { env: { ...process.env, ...env } }) });
    this.#all.push(child);
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    return child as ChildProcess & { pid: number };
  }

  /** A shell busy loop pinned to `cpu`; `marker` ends up in its command line. */
  busy(cpu: number, marker = "odop-busy"): ChildProcess & { pid: number } {
    return this.spawn("taskset", ["-c", String(cpu), "sh", "-c", `${BUSY_LOOP}; echo ${marker}`]);
  }

  /** Kills every child's process group and waits until the children have exited. */
  async killAll(): Promise<void> {
    const children = this.#all.splice(0);
    await Promise.all(children.map((child) => kill(child)));
  }
}

/** Kills the process group of `child` and waits for it to exit. */
export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
  await exited;
}

/** A pid that is certainly not in use: a child that has exited and been reaped. */
export async function deadPid(): Promise<number> {
  const child = spawn("true", [], { stdio: "ignore" });
  const pid = child.pid;
  await new Promise((resolve) => child.once("exit", resolve));
  if (pid === undefined) throw new Error("could not start true");
  return pid;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `probe` holds (processes take a moment to fork and exec). */
export async function until(probe: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  for (let waited = 0; !probe(); waited += 20) {
    if (waited > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Online logical CPUs, as the kernel lists them in /sys/devices/system/cpu/online. */
export function onlineCpus(): number[] {
  const ids: number[] = [];
  for (const range of readFileSync("/sys/devices/system/cpu/online", "utf8").trim().split(",")) {
    const [from, to] = range.split("-").map(Number);
    for (let id = from ?? 0; id <= (to ?? from ?? 0); id++) ids.push(id);
  }
  return ids;
}
