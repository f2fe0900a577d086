/**
 * bench/harvest: how much of the idle CPU a bursty main application leaves does odop
 * use, and what does it cost the application? Compared side by side with what a user
 * can do without odop:
 *
 *   alone   the synthetic simulation (examples/local/simulation.mjs) by itself, twice
 *           (before and after the others: the spread is the noise of this machine)
 *   odop    odop run, attached with --main-pid, compressing each snapshot as it appears
 *   nice    the same compressions started as snapshots appear, under nice -n 19
 *   chrt    the same, under chrt --idle 0 (SCHED_IDLE)
 *   after   the same compressions once the simulation has ended
 *
 * For each: the simulation's wall time and slowdown against "alone", the core-seconds
 * the simulation left idle while it ran, the core-seconds the data operations used in
 * that time (harvest = used / left idle), and when the last result existed.
 * Measured with odop's own sampler (per-thread /proc attribution) every 250 ms.
 *
 *   npm run bench:harvest [-- --steps 10 --work 3e7 --io-ms 1500 --snapshot-mb 8 --op "xz -T1 -6"
 *                              --odop "--hold 1s --reclaim smoothed"]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Sampler } from "../../src/agent/sampler.ts";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "10" },
    work: { type: "string", default: "3e7" },
    "io-ms": { type: "string", default: "1500" },
    "snapshot-mb": { type: "string", default: "8" },
    op: { type: "string", default: "xz -T1 -6" },
    odop: { type: "string", default: "" },
    modes: { type: "string", default: "alone,odop,nice,chrt,after,alone" },
  },
});

const ROOT = join(import.meta.dirname, "../..");
const SIMULATION = join(ROOT, "examples/local/simulation.mjs");
const ODOP = join(ROOT, "src/cli/odop.ts");
const NODE = process.execPath;
const op = values.op;
const simArgs = (out: string) => [SIMULATION, "--steps", values.steps, "--work", values.work, "--io-ms", values["io-ms"], "--snapshot-mb", values["snapshot-mb"], "--out", out];

type Measure = { mode: string; wallMs: number; idleCoreSeconds: number; harvestedCoreSeconds: number; resultsAtMs: number | undefined; overheadSeconds: number };

function wait(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Samples while `running()` holds: core-seconds the main application left idle, and those odop's side used. */
async function measure(node: string, mainPid: () => number | undefined, opsRoots: () => number[], running: () => boolean) {
  const sampler = new Sampler({ node, main: () => ({ pids: [mainPid() ?? -1] }), odopRoots: opsRoots });
  let idle = 0;
  let harvested = 0;
  await sampler.sample();
  while (running()) {
    await wait(250);
    const s = await sampler.sample();
    const seconds = s.intervalMs / 1000;
    for (const c of s.cores) {
      idle += (1 - c.main) * seconds;
      harvested += c.odop * seconds;
    }
  }
  return { idle, harvested };
}

function countResults(dir: string): number {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".out")).length : 0;
}

/** A naive watcher: compresses each new snapshot as it appears, two at a time, with a prefix (nice, chrt). */
function watcherScript(prefix: string, snapshots: string, results: string): string {
  return `
set -u
mkdir -p ${results}
done_list=""
while :; do
  for f in ${snapshots}/step_*.dat; do
    [ -e "$f" ] || continue
    case " $done_list " in *" $f "*) continue;; esac
    done_list="$done_list $f"
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do sleep 0.05; done
    ( ${prefix} ${op} -c "$f" > "${results}/$(basename "$f").tmp" && mv "${results}/$(basename "$f").tmp" "${results}/$(basename "$f").out" ) &
  done
  [ -e ${snapshots}/../progress.done ] && [ "$(ls ${snapshots}/step_*.dat 2>/dev/null | wc -l)" -le "$(echo $done_list | wc -w)" ] && break
  sleep 0.1
done
wait
`;
}

async function runMode(mode: "alone" | "odop" | "nice" | "chrt" | "after", node: string): Promise<Measure> {
  const dir = mkdtempSync(join(tmpdir(), `odop-bench-${mode}-`));
  const out = join(dir, "sim");
  const snapshots = join(out, "snapshots");
  const results = join(dir, "results");
  mkdirSync(snapshots, { recursive: true });
  let started = Date.now();
  let ops: ChildProcess | undefined;
  let mainPid: number | undefined;
  let mainDone: Promise<void>;
  let mainRunning = true;
  let mainOut = "";
  const markDone = () => {
    mainRunning = false;
    writeFileSync(join(out, "progress.done"), "");
  };
  if (mode === "odop") {
    const tasks = join(dir, "tasks");
    mkdirSync(tasks);
    writeFileSync(
      join(tasks, "compress.yaml"),
      `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata: {name: compress}
spec:
  trigger: {fileIn: {path: ${snapshots}, pattern: "step_*.dat"}}
  run:
    script: |
      set -euo pipefail
      mkdir -p ${results}
      f="$ODOP_TRIGGER_FILES"
      ${op} -c "$f" > "${results}/$(basename "$f").tmp"
      mv "${results}/$(basename "$f").tmp" "${results}/$(basename "$f").out"
  requirements: {cpu: {min: 1, max: 1}}
  policy: {onContention: pause, concurrency: 2}
`,
    );
    // odop starts first and launches the simulation (as a user would), so its own start-up
    // is not charged to the simulation; the simulation reports its wall time itself.
    const odopFlags = values.odop.split(" ").filter(Boolean);
    const home = join(dir, "odop-home");
    const run = `bench-${process.pid}`;
    ops = spawn(NODE, [ODOP, "run", tasks, "--run", run, "--no-table", ...odopFlags, "--", NODE, ...simArgs(out)], {
      stdio: "ignore",
      env: { ...process.env, ODOP_PATH: home },
    });
    const record = join(home, "runs", run, "main.json");
    while (!existsSync(record)) await wait(20);
    started = Date.now();
    mainPid = (JSON.parse(readFileSync(record, "utf8")) as { pid: number }).pid;
    const odopProcess = ops;
    mainDone = new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (existsSync(`/proc/${mainPid}`) && !readFileSync(`/proc/${mainPid}/stat`, "utf8").includes(") Z ")) return;
        clearInterval(timer);
        markDone();
        resolve();
      }, 20);
    });
    void odopProcess;
  } else {
    const main = spawn(NODE, simArgs(out), { stdio: ["ignore", "pipe", "inherit"] });
    main.stdout?.on("data", (d: Buffer) => (mainOut += d.toString()));
    mainPid = main.pid;
    mainDone = exited(main).then(markDone);
    if (mode === "nice" || mode === "chrt") {
      ops = spawn("bash", ["-c", watcherScript(mode === "nice" ? "nice -n 19" : "chrt --idle 0", snapshots, results)], { stdio: "ignore" });
    }
  }

  // The data operations: the watcher's tree, or the stages odop started (its children but the simulation).
  const opsRoots = (): number[] => {
    if (ops?.pid === undefined) return [];
    if (mode !== "odop") return [ops.pid];
    return childrenOf(ops.pid).filter((p) => p !== mainPid);
  };
  const overheadBefore = mode === "odop" && ops?.pid !== undefined ? ownTicks(ops.pid) : 0;
  const sampled = measure(node, () => mainPid, opsRoots, () => mainRunning);
  await mainDone;
  const { idle, harvested } = await sampled;
  const overheadSeconds = mode === "odop" && ops?.pid !== undefined ? (ownTicks(ops.pid) - overheadBefore) / 100 : 0;
  const wallMs =
    mode === "odop"
      ? readWall(join(dir, "odop-home", "runs", `bench-${process.pid}`, "main.out"), started)
      : ((JSON.parse(mainOut.trim().split("\n").at(-1) ?? "{}") as { wallMs?: number }).wallMs ?? Date.now() - started);

  if (mode === "after") {
    ops = spawn("bash", ["-c", watcherScript("", snapshots, results)], { stdio: "ignore" });
  }
  const steps = Number(values.steps);
  let resultsAtMs: number | undefined;
  if (mode !== "alone") {
    while (countResults(results) < steps) await wait(50);
    resultsAtMs = Date.now() - started;
  }
  if (ops !== undefined) await Promise.race([exited(ops), wait(30_000)]);
  ops?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
  return { mode, wallMs, idleCoreSeconds: idle, harvestedCoreSeconds: harvested, resultsAtMs, overheadSeconds };
}

/** Direct children of a process (all its threads'). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ").filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** CPU ticks (utime + stime) of the process itself, not its children. */
function ownTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The simulation's own account of its wall time (its last output line). */
function readWall(file: string, started: number): number {
  try {
    return (JSON.parse(readFileSync(file, "utf8").trim().split("\n").at(-1) ?? "{}") as { wallMs?: number }).wallMs ?? Date.now() - started;
  } catch {
    return Date.now() - started;
  }
}

const node = "bench";
const MODES = ["alone", "odop", "nice", "chrt", "after"] as const;
const order = values.modes.split(",").map((m) => {
  if (!(MODES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode ${m}; use ${MODES.join(", ")}`);
  return m as (typeof MODES)[number];
});
const results: Measure[] = [];
process.stdout.write(`bench/harvest: simulation ${values.steps} steps, work ${values.work}, I/O ${values["io-ms"]} ms, snapshots ${values["snapshot-mb"]} MB; data operation: ${op}; odop run ${values.odop || "(defaults)"}\n`);
for (const mode of order) {
  process.stdout.write(`  running ${mode}…\n`);
  results.push(await runMode(mode, node));
}
const alone = results.filter((r) => r.mode === "alone");
const base = alone.reduce((a, r) => a + r.wallMs, 0) / alone.length;
const noise = alone.length < 2 ? 0 : (Math.abs((alone[0]?.wallMs ?? 0) - (alone[1]?.wallMs ?? 0)) / base) * 100;
const rows = results.map((r) => [
  r.mode,
  (r.wallMs / 1000).toFixed(2),
  r.mode === "alone" ? "—" : `${(((r.wallMs - base) / base) * 100).toFixed(1)} %`,
  r.idleCoreSeconds.toFixed(1),
  r.harvestedCoreSeconds.toFixed(1),
  r.mode === "alone" ? "—" : `${((r.harvestedCoreSeconds / r.idleCoreSeconds) * 100).toFixed(0)} %`,
  r.resultsAtMs === undefined ? "—" : (r.resultsAtMs / 1000).toFixed(1),
  r.mode === "odop" ? r.overheadSeconds.toFixed(2) : "—",
]);
const headers = ["mode", "main wall s", "slowdown", "idle core-s", "ops core-s during main", "harvest", "all results at s", "odop's own CPU s"];
const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
process.stdout.write(`\n${[headers, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")).join("\n")}\n`);
process.stdout.write(`\nnoise: the two "alone" runs differ by ${noise.toFixed(1)} %. Goals: slowdown ≤ 1 %, harvest ≥ 80 %, results sooner than "after".\n`);
