/**
 * The main application of an `odop run`: launched by odop (`-- COMMAND...`) or
 * attached to (`--main-pid N`). A launched application is recorded in the run folder
 * so that an `odop run` restarted after being killed re-attaches to it instead of
 * starting a second copy.
 */
import { spawn } from "node:child_process";
import { openSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { readProcStat } from "../agent/procfs.ts";

export type MainApplication = {
  pid: number;
  /** Resolves with the exit code (undefined when attached: not ours to know). */
  ended: Promise<number | undefined>;
  launched: boolean;
};

type MainRecord = { pid: number; startTicks: number; command: readonly string[] };

/** Attaches to a running process; `ended` resolves when it is gone. */
export function attach(pid: number, pollMs = 250): MainApplication {
  const stat = readProcStat(pid);
  if (stat === undefined) throw new Error(`--main-pid ${pid}: no such process`);
  const ended = new Promise<number | undefined>((resolve) => {
    const timer = setInterval(() => {
      const now = readProcStat(pid);
      if (now === undefined || now.startTicks !== stat.startTicks || now.state === "Z") {
        clearInterval(timer);
        resolve(undefined);
      }
    }, pollMs);
    timer.unref(); // watching it must not keep odop alive after the run ended
  });
  return { pid, ended, launched: false };
}

/**
 * Launches `command` with its output in `outputPrefix`.out/.err, or re-attaches to the
 * copy a previous `odop run` of this run launched and that is still running.
 */
export function launchOrAdopt(command: readonly string[], recordPath: string, outputPrefix: string): MainApplication {
  const previous = readRecord(recordPath);
  if (previous !== undefined && JSON.stringify(previous.command) === JSON.stringify(command)) {
    const stat = readProcStat(previous.pid);
    if (stat !== undefined && stat.startTicks === previous.startTicks && stat.state !== "Z") return attach(previous.pid);
  }
  const [program, ...args] = command as [string, ...string[]];
  const out = openSync(`${outputPrefix}.out`, "a");
  const err = openSync(`${outputPrefix}.err`, "a");
  const child = spawn(program, args, { stdio: ["ignore", out, err] });
  closeSync(out);
  closeSync(err);
  const ended = new Promise<number | undefined>((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`cannot start the main application ${program}: ${error.message}`)));
    child.once("exit", (code, signal) => {
      rmSync(recordPath, { force: true });
      resolve(code ?? (signal === null ? 1 : 128 + (signalNumber(signal) ?? 0)));
    });
  });
  // odop may end before the application (odop was interrupted); it must not wait for it.
  child.unref();
  const pid = child.pid ?? 0;
  const startTicks = readProcStat(pid)?.startTicks ?? 0;
  writeFileSync(recordPath, JSON.stringify({ pid, startTicks, command } satisfies MainRecord));
  return { pid, ended, launched: true };
}

function readRecord(path: string): MainRecord | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as MainRecord;
  } catch {
    return undefined;
  }
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Partial<Record<NodeJS.Signals, number>>)[signal];
}
