/**
 * Where `odop run` keeps a run: $ODOP_PATH/runs/<run>/ (ODOP_PATH defaults to ~/.odop,
 * as in ODOP). A run folder holds the store's journal, executions' workspaces and logs,
 * odop's own log, the control socket and a lock, so that one `odop run` owns a run at a
 * time and a restarted one resumes it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";

export function odopPath(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env["ODOP_PATH"];
  return configured !== undefined && configured !== "" ? resolve(configured) : join(homedir(), ".odop");
}

/** A run's name from the manifests' path: "examples/local/" → "local". */
export function runNameFor(path: string): string {
  const base = basename(resolve(path)).replace(/\.(ya?ml|json)$/, "");
  const slug = base.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return slug === "" ? "default" : slug.slice(0, 63);
}

export type RunPaths = {
  name: string;
  root: string;
  store: string;
  executions: string;
  secrets: string;
  log: string;
  socket: string;
  lock: string;
  main: string;
};

export function runPaths(name: string, env: NodeJS.ProcessEnv = process.env): RunPaths {
  const base = odopPath(env);
  const root = join(base, "runs", name);
  return {
    name,
    root,
    store: join(root, "store"),
    executions: join(root, "executions"),
    secrets: join(base, "secrets"),
    log: join(root, "odop.log"),
    socket: join(root, "odop.sock"),
    lock: join(root, "lock"),
    main: join(root, "main.json"),
  };
}

/** Runs under $ODOP_PATH/runs, newest first. */
export function listRuns(env: NodeJS.ProcessEnv = process.env): string[] {
  const dir = join(odopPath(env), "runs");
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => ({ name: d.name, mtime: statSync(join(dir, d.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime)
    .map((r) => r.name);
}

/** The run a command means: the one named, else the only one, else the most recent. */
export function chooseRun(name: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (name !== undefined) return name;
  const runs = listRuns(env);
  const chosen = runs[0];
  if (chosen === undefined) throw new Error(`no runs in ${join(odopPath(env), "runs")}; start one with \`odop run PATH\``);
  return chosen;
}

/** The pid of the `odop run` that owns the run, if it is alive. */
export function lockOwner(paths: RunPaths): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(paths.lock, "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Takes the run's lock for this process; throws when another live `odop run` holds it. */
export function acquireLock(paths: RunPaths): () => void {
  mkdirSync(paths.root, { recursive: true });
  const owner = lockOwner(paths);
  if (owner !== undefined && owner !== process.pid) {
    throw new Error(`run "${paths.name}" is in use by odop run (pid ${owner}); stop it first, or choose another run with --run`);
  }
  writeFileSync(paths.lock, `${process.pid}\n`);
  return () => rmSync(paths.lock, { force: true });
}
