/**
 * A real single-node Slurm (22.05, Debian packages) for the Slurm backend's tests.
 *
 * startSlurm() writes keys and a slurm.conf into a fresh scratch folder and starts
 * munged, slurmctld, slurmd and slurmrestd there as child processes of the test
 * process (foreground, logs in the folder), each on its own free loopback port, with
 * a node name of its own: two clusters (two test files in parallel workers) coexist.
 * Nothing under /etc or /run is read or written. Daemons run as root; jobs run as the
 * non-root `user`. See docs/slurm-harness.md.
 *
 * No daemon outlives the test process: each is started under `setpriv --pdeathsig
 * KILL`, stop() kills them by PID, and an 'exit' handler SIGKILLs whatever is left,
 * including the slurmstepd and job processes of this cluster's jobs.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { chmod, chown, mkdir } from "node:fs/promises";
import { Agent, request } from "node:http";
import { availableParallelism, hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePorts } from "./ports.ts";

export type SlurmCluster = {
  /** The scratch folder: keys, slurm.conf, state, spool, pid and log files. */
  dir: string;
  /** Path of slurm.conf (SLURM_CONF for the CLI tools). */
  conf: string;
  /** Variables that point sbatch/squeue/scontrol/srun at this cluster: run them with `{ ...process.env, ...cluster.env }`. */
  env: Record<string, string>;
  /** The Slurm node name, unique per cluster (odop-<random>). */
  node: string;
  cpus: number;
  memoryMiB: number;
  /** The only partition, "debug". */
  partition: string;
  /** http://127.0.0.1:<port>, slurmrestd speaking openapi/v0.0.38 with JWT auth. */
  restUrl: string;
  /** The non-root user that jobs run as. */
  user: string;
  uid: number;
  gid: number;
  /** Slurm's JWT key (HS256), for clients that mint their own tokens. */
  jwtKeyPath: string;
  /** A token for `user` from `scontrol token`. */
  token(lifespanSeconds?: number): Promise<string>;
  /** Stops slurmrestd by PID and starts it again on the same port; resolves once it answers ping. */
  restartRest(): Promise<void>;
  stopRest(): Promise<void>;
  startRest(): Promise<void>;
  /** Stops every daemon (and leftover job processes of this cluster), removes the folder unless ODOP_KEEP_SLURM=1. Idempotent. */
  stop(): Promise<void>;
  /** The tail of each daemon's log, for failure messages. */
  logs(): string;
};

export type SlurmOptions = {
  /** Folder in which the scratch folder is created (default os.tmpdir()); its parents must be traversable by the job user. */
  dir?: string;
  /** Receives progress lines (default: none). */
  log?: (line: string) => void;
  /** Bound on each readiness wait (default 30 s). */
  timeoutMs?: number;
};

export const SLURM_PACKAGES = ["slurm-wlm", "slurmrestd", "munge", "slurm-wlm-jwt-plugin"] as const;
export const REST_VERSION = "v0.0.38";
export const JOB_USER = "odop";
const PARTITION = "debug";
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BINARIES = ["munged", "slurmctld", "slurmd", "slurmrestd", "sinfo", "scontrol", "sbatch", "srun", "squeue", "scancel"];
const STOP_GRACE_MS = 5_000;

type DaemonName = "munged" | "slurmctld" | "slurmd" | "slurmrestd";
type Daemon = { name: DaemonName; child: ChildProcess | undefined; exited: Promise<void>; log: string };

// Every daemon PID this process started, and every live cluster's slurm.conf (which
// names its slurmstepd and job processes) with its folder, for the exit handler.
const livePids = new Set<number>();
const liveConfs = new Map<string, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of livePids) signal(pid, "SIGKILL");
    for (const [conf, dir] of liveConfs) {
      for (const pid of jobProcesses(conf)) signal(pid, "SIGKILL");
      if (!keepFolders()) rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** Starts a private single-node Slurm; rejects (with the daemons' logs) when it does not come up. */
export async function startSlurm(options: SlurmOptions = {}): Promise<SlurmCluster> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  const timeoutMs = options.timeoutMs ?? 30_000;
  preflight();
  installExitHook();
  const { uid, gid } = await ensureUser(JOB_USER);

  const parent = options.dir ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  assertTraversable(parent, JOB_USER);
  const dir = mkdtempSync(join(parent, "odop-slurm-"));
  // Traversable (not listable) by the job user: it reads slurm.conf, talks to the munge
  // socket and works in sharedDir() folders under here.
  await chmod(dir, 0o711);

  const node = `odop-${randomBytes(3).toString("hex")}`;
  const ncpus = availableParallelism();
  const topology = await hardwareTopology(ncpus);
  const memoryMiB = Math.max(512, Math.floor(memTotalKiB() / 1024) - 1024);
  const [ctldPort, slurmdPort, restPort] = await freePorts(3);
  if (ctldPort === undefined || slurmdPort === undefined || restPort === undefined) throw new Error("Slurm harness: no free ports");
  const conf = join(dir, "slurm.conf");
  const mungeSocket = join(dir, "munge", "munge.socket");
  const jwtKeyPath = join(dir, "jwt.key");
  const restUrl = `http://127.0.0.1:${String(restPort)}`;
  const host = hostname().split(".")[0] ?? hostname();

  mkdirSync(join(dir, "munge"), { mode: 0o755 });
  mkdirSync(join(dir, "state"), { mode: 0o700 });
  mkdirSync(join(dir, "spool"), { mode: 0o755 });
  mkdirSync(join(dir, "log"), { mode: 0o755 });
  mkdirSync(join(dir, "shared"), { mode: 0o755 });
  writeFileSync(join(dir, "munge", "munge.key"), randomBytes(1024), { mode: 0o400 });
  writeFileSync(jwtKeyPath, randomBytes(32), { mode: 0o600 });
  writeFileSync(
    conf,
    slurmConf({ dir, node, host, ncpus, topology, memoryMiB, ctldPort, slurmdPort, mungeSocket, jwtKeyPath }),
    { mode: 0o644 },
  );

  const baseEnv = { PATH: SYSTEM_PATH, LANG: "C.UTF-8", SLURM_CONF: conf };
  const daemons = new Map<DaemonName, Daemon>();
  const logPath = (name: DaemonName) => join(dir, "log", `${name}.log`);
  const launch = (name: DaemonName, command: string, args: string[], env: Record<string, string> = baseEnv): void => {
    daemons.set(name, startDaemon(name, command, args, env, logPath(name)));
  };
  const logs = (): string =>
    (["munged", "slurmctld", "slurmd", "slurmrestd"] as const)
      .map((name) => `--- ${name} (${logPath(name)})\n${tail(logPath(name), 40)}`)
      .join("\n");
  const alive = (name: DaemonName): boolean => {
    const child = daemons.get(name)?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  };
  const assertAlive = (...names: DaemonName[]): void => {
    for (const name of names) if (!alive(name)) throw new Error(`${name} exited (${describeExit(daemons.get(name)?.child)})`);
  };
  const waitFor = async <T>(what: string, names: DaemonName[], probe: () => Promise<T | undefined>): Promise<T> => {
    try {
      return await poll(what, timeoutMs, async () => {
        assertAlive(...names);
        return probe();
      });
    } catch (error) {
      throw new Error(`Slurm harness (${dir}): ${(error as Error).message}\n${logs()}`, { cause: error });
    }
  };
  const cliEnv = (): NodeJS.ProcessEnv => ({ ...withoutSlurmVars(process.env), PATH: `${process.env["PATH"] ?? ""}:${SYSTEM_PATH}`, SLURM_CONF: conf });
  const token = async (lifespanSeconds = 3600): Promise<string> => {
    const { stdout } = await run("scontrol", ["token", `username=${JOB_USER}`, `lifespan=${String(lifespanSeconds)}`], cliEnv());
    const match = /SLURM_JWT=(\S+)/.exec(stdout);
    if (match?.[1] === undefined) throw new Error(`scontrol token printed no token: ${stdout}`);
    return match[1];
  };
  const startRest = async (): Promise<void> => {
    if (alive("slurmrestd")) return;
    launch("slurmrestd", "slurmrestd", ["-f", conf, "-a", "rest_auth/jwt", "-s", `openapi/${REST_VERSION}`, `127.0.0.1:${String(restPort)}`], {
      ...baseEnv,
      // Without SLURM_JWT=daemon every request fails with "Rejecting thread config token".
      SLURM_JWT: "daemon",
      // slurmrestd refuses to run as root otherwise.
      SLURMRESTD_SECURITY: "disable_user_check",
    });
    const jwt = await token(600);
    await waitFor(`slurmrestd to answer GET ${restUrl}/slurm/${REST_VERSION}/ping`, ["slurmrestd"], () => ping(restUrl, jwt));
  };
  const stopRest = async (): Promise<void> => {
    const rest = daemons.get("slurmrestd");
    if (rest !== undefined) await stopDaemon(rest);
  };

  liveConfs.set(conf, dir);
  const watchdog = startWatchdog(conf, keepFolders() ? undefined : dir);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await Promise.all([...daemons.values()].map((d) => stopDaemon(d)));
      for (const pid of jobProcesses(conf)) signal(pid, "SIGKILL");
      liveConfs.delete(conf);
      await stopWatchdog(watchdog);
      if (keepFolders()) log(`slurm: kept ${dir} (ODOP_KEEP_SLURM=1)`);
      else rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    launch("munged", "munged", [
      "--foreground",
      "--force",
      `--key-file=${join(dir, "munge", "munge.key")}`,
      `--socket=${mungeSocket}`,
      `--pid-file=${join(dir, "munge", "munged.pid")}`,
      `--seed-file=${join(dir, "munge", "munged.seed")}`,
      `--log-file=${logPath("munged")}`,
    ]);
    await waitFor(`munged to create ${mungeSocket}`, ["munged"], () => Promise.resolve(existsSync(mungeSocket) ? true : undefined));
    launch("slurmctld", "slurmctld", ["-D", "-f", conf]);
    launch("slurmd", "slurmd", ["-D", "-f", conf, "-N", node]);
    await waitFor(`node ${node} to be idle in sinfo`, ["munged", "slurmctld", "slurmd"], async () => {
      const { stdout } = await run("sinfo", ["-h", "-N", "-n", node, "-o", "%T"], cliEnv()).catch(() => ({ stdout: "" }));
      return stdout.trim() === "idle" ? true : undefined;
    });
    await startRest();
  } catch (error) {
    await stop();
    throw error;
  }
  log(`slurm: node ${node} up in ${String(Date.now() - started)} ms at ${dir} (rest ${restUrl})`);

  return {
    dir,
    conf,
    env: { SLURM_CONF: conf },
    node,
    cpus: ncpus,
    memoryMiB,
    partition: PARTITION,
    restUrl,
    user: JOB_USER,
    uid,
    gid,
    jwtKeyPath,
    token,
    restartRest: async () => {
      await stopRest();
      await startRest();
    },
    stopRest,
    startRest,
    stop,
    logs,
  };
}

/** A folder under the cluster's folder that the job user (and root) can write; created if missing. */
export async function sharedDir(cluster: SlurmCluster, name: string): Promise<string> {
  const path = join(cluster.dir, "shared", name);
  await mkdir(path, { recursive: true });
  await chown(path, cluster.uid, cluster.gid);
  await chmod(path, 0o777);
  return path;
}

function slurmConf(c: {
  dir: string;
  node: string;
  host: string;
  ncpus: number;
  topology: string;
  memoryMiB: number;
  ctldPort: number;
  slurmdPort: number;
  mungeSocket: string;
  jwtKeyPath: string;
}): string {
  return `# Written by test/support/slurm.ts for one test cluster; see docs/slurm-harness.md.
ClusterName=${c.node}
SlurmctldHost=${c.host}(127.0.0.1)
SlurmctldPort=${String(c.ctldPort)}
SlurmdPort=${String(c.slurmdPort)}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${c.mungeSocket}
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=${c.jwtKeyPath}
StateSaveLocation=${c.dir}/state
SlurmdSpoolDir=${c.dir}/spool
SlurmctldPidFile=${c.dir}/slurmctld.pid
SlurmdPidFile=${c.dir}/slurmd.pid
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=300
InactiveLimit=0
NodeName=${c.node} NodeAddr=127.0.0.1 NodeHostname=${c.host} CPUs=${String(c.ncpus)}${c.topology} RealMemory=${String(c.memoryMiB)} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${c.node} Default=YES MaxTime=INFINITE OverSubscribe=NO State=UP
`;
}

function preflight(): void {
  const install = `install them with \`apt-get install -y --no-install-recommends ${SLURM_PACKAGES.join(" ")}\` (.ci/run does this before npm test)`;
  const missing = BINARIES.filter((b) => which(b) === undefined);
  if (missing.length > 0) throw new Error(`Slurm harness: ${missing.join(", ")} not found; the Slurm tests need the Debian packages ${SLURM_PACKAGES.join(" ")}: ${install}`);
  const plugins = ["/usr/lib", "/usr/lib64", "/usr/local/lib"].flatMap((base) => {
    try {
      return readdirSync(base).flatMap((d) => [join(base, d, "slurm-wlm", "auth_jwt.so"), join(base, d, "auth_jwt.so")]).concat(join(base, "slurm-wlm", "auth_jwt.so"), join(base, "slurm", "auth_jwt.so"));
    } catch {
      return [];
    }
  });
  if (!plugins.some((p) => existsSync(p))) throw new Error(`Slurm harness: Slurm's auth/jwt plugin (auth_jwt.so) not found: ${install}`);
  if (process.getuid?.() !== 0) throw new Error("Slurm harness: must run as root (it runs munged, slurmctld and slurmd as root, and jobs as the user odop)");
  if (which("setpriv") === undefined) throw new Error("Slurm harness: setpriv (util-linux) not found; it ties the daemons' lifetime to the test process");
}

function keepFolders(): boolean {
  return process.env["ODOP_KEEP_SLURM"] === "1";
}

function which(command: string): string | undefined {
  const folders = `${process.env["PATH"] ?? ""}:${SYSTEM_PATH}`.split(":").filter((f) => f !== "");
  for (const folder of folders) {
    const path = join(folder, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next folder
    }
  }
  return undefined;
}

async function ensureUser(user: string): Promise<{ uid: number; gid: number }> {
  const lookup = async () => {
    const [u, g] = await Promise.all([run("id", ["-u", user]), run("id", ["-g", user])]);
    return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    // Two test files may race to create it: a failing useradd is fine if the user now exists.
    await run("useradd", ["-M", "-s", "/usr/sbin/nologin", user]).catch(() => undefined);
    return lookup();
  }
}

/** The job user must reach the scratch folder made in `parent`: `parent` and every folder above it must be o+x. */
function assertTraversable(parent: string, user: string): void {
  for (let d = parent; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(`Slurm harness: ${d} is not traversable by other users, so the job user ${user} cannot reach a cluster folder in ${parent}; pass startSlurm({ dir }) or set TMPDIR to a folder that it and its parents let others traverse`);
    }
    if (d === dirname(d)) return;
  }
}

/**
 * The board/socket/core/thread layout that `slurmd -C` sees, when it agrees with the
 * CPU count (without it slurmd "reconfigures socket/core boundaries" and CR_Core
 * counts wrong on machines with hyperthreads); "" otherwise.
 */
async function hardwareTopology(ncpus: number): Promise<string> {
  const { stdout } = await run("slurmd", ["-C"]).catch(() => ({ stdout: "" }));
  const field = (name: string) => new RegExp(`\\b${name}=(\\d+)`).exec(stdout)?.[1];
  const [cpuCount, boards, sockets, cores, threads] = ["CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore"].map(field);
  if (cpuCount !== String(ncpus) || boards === undefined || sockets === undefined || cores === undefined || threads === undefined) return "";
  return ` Boards=${boards} SocketsPerBoard=${sockets} CoresPerSocket=${cores} ThreadsPerCore=${threads}`;
}

function memTotalKiB(): number {
  const match = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
  if (match?.[1] === undefined) throw new Error("Slurm harness: no MemTotal in /proc/meminfo");
  return Number(match[1]);
}

function startDaemon(name: DaemonName, command: string, args: string[], env: Record<string, string>, logFile: string): Daemon {
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    // setpriv execs the daemon (same PID) with a parent-death signal: if the test
    // process dies without running its exit handlers, the daemon dies with it.
    child = spawn("setpriv", ["--pdeathsig", "KILL", "--", command, ...args], { env, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  // A forgotten stop() must not hold the test process open: the exit handler kills it.
  child.unref();
  const pid = child.pid;
  if (pid !== undefined) livePids.add(pid);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      if (pid !== undefined) livePids.delete(pid);
      resolve();
    });
    child.once("error", (error) => {
      writeFileSync(logFile, `harness: could not start ${command}: ${error.message}\n`, { flag: "a" });
      resolve();
    });
  });
  return { name, child, exited, log: logFile };
}

/**
 * A detached shell that waits for EOF on a pipe from this process (stop() closes it;
 * so does the kernel when this process dies in any way, SIGKILL included), then
 * SIGKILLs every process whose environment names this cluster's slurm.conf: the
 * slurmstepds (they inherit slurmd's) and the job processes (Slurm sets SLURM_CONF in
 * job environments), which pdeathsig does not reach; then removes the folder.
 */
function startWatchdog(conf: string, removeDir: string | undefined): ChildProcess {
  const script = `cat >/dev/null
for d in /proc/[0-9]*; do
  grep -qxzF "SLURM_CONF=$1" "$d/environ" 2>/dev/null && kill -9 "\${d#/proc/}" 2>/dev/null
done
if [ -n "$2" ]; then rm -rf -- "$2"; fi
exit 0`;
  const child = spawn("sh", ["-c", script, "odop-slurm-watchdog", conf, removeDir ?? ""], { detached: true, stdio: ["pipe", "ignore", "ignore"], env: { PATH: SYSTEM_PATH } });
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.on("error", () => undefined);
  return child;
}

/** Closes the watchdog's pipe and waits (bounded) for it to sweep and exit. */
async function stopWatchdog(watchdog: ChildProcess): Promise<void> {
  if (watchdog.exitCode !== null || watchdog.signalCode !== null || watchdog.pid === undefined) return;
  const exited = new Promise<void>((resolve) => watchdog.once("exit", () => resolve()));
  watchdog.stdin?.destroy();
  // A referenced timer keeps the event loop alive while waiting on the unref'd child.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)))]);
  clearTimeout(timer);
  if (watchdog.exitCode === null && watchdog.signalCode === null) signal(watchdog.pid, "SIGKILL");
}

async function stopDaemon(daemon: Daemon): Promise<void> {
  const child = daemon.child;
  if (child === undefined || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  signal(child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    if (child.pid !== undefined) signal(child.pid, "SIGKILL");
  }, STOP_GRACE_MS);
  await daemon.exited;
  clearTimeout(timer);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * The slurmstepd and job processes of the cluster whose slurm.conf is `conf`: those
 * whose environment names it (slurmstepd inherits slurmd's), and their descendants.
 */
function jobProcesses(conf: string): number[] {
  const needle = Buffer.from(`SLURM_CONF=${conf}\0`);
  const parents = new Map<number, number>();
  const marked = new Set<number>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || livePids.has(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(pid, Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      if (readFileSync(`/proc/${entry}/environ`).includes(needle)) marked.add(pid);
    } catch {
      // exited meanwhile
    }
  }
  const isJob = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = parents.get(p), hops++) if (marked.has(p)) return true;
    return false;
  };
  return [...parents.keys()].filter(isJob);
}

function withoutSlurmVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith("SLURM_") && !k.startsWith("SQUEUE_") && !k.startsWith("SBATCH_") && !k.startsWith("SRUN_") && !k.startsWith("SINFO_")));
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: env ?? process.env, timeout: 15_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${command} ${args.join(" ")}: ${error.message.trim()} ${stderr.trim()}`));
      else resolve({ stdout, stderr });
    });
  });
}

/**
 * GET …/ping on a connection of its own, closed afterwards. Not with `Connection:
 * close`: slurmrestd 22.05 then writes a stray "Connection: Close" header line after
 * the body, which Node's HTTP parser rejects. A keep-alive agent destroyed after the
 * answer avoids both that and piling up idle connections.
 */
function ping(restUrl: string, token: string): Promise<true | undefined> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return new Promise<true | undefined>((resolve) => {
    const req = request(
      `${restUrl}/slurm/${REST_VERSION}/ping`,
      { agent, headers: { "X-SLURM-USER-NAME": JOB_USER, "X-SLURM-USER-TOKEN": token }, timeout: 5_000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          try {
            const errors = (JSON.parse(body) as { errors?: unknown[] }).errors;
            resolve(res.statusCode === 200 && Array.isArray(errors) && errors.length === 0 ? true : undefined);
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  }).finally(() => agent.destroy());
}

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines - 1).join("\n");
  } catch {
    return "(no log)";
  }
}

function describeExit(child: ChildProcess | undefined): string {
  if (child === undefined) return "never started";
  return child.signalCode !== null ? `signal ${child.signalCode}` : `code ${String(child.exitCode)}`;
}
