/**
 * bench/trigger: how long from a file being closed to its execution's run stage running,
 * in the embedded mode (DESIGN §6 goal: ≤ 1 s locally).
 *
 * Starts `odop run` with a fileIn task (its main application a `sleep`), then writes N
 * files one after another, each closed at a known time; the run stage records the
 * time it started. Prints p50, p95 and max of (stage start − file closed), measured on
 * one clock (this machine's).
 *
 *   npm run bench:trigger [-- --files 20 --gap-ms 1500]
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { files: { type: "string", default: "20" }, "gap-ms": { type: "string", default: "1500" } } });
const files = Number(values.files);
const gapMs = Number(values["gap-ms"]);
const ROOT = join(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "odop-bench-trigger-"));
const incoming = join(dir, "incoming");
const marks = join(dir, "marks");
mkdirSync(incoming);
mkdirSync(marks);
mkdirSync(join(dir, "tasks"));
const task = `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata: {name: latency}
spec:
  trigger: {fileIn: {path: ${incoming}, pattern: "*.dat"}}
  run:
    command: ["bash", "-c", "date +%s%3N > ${marks}/$(basename $ODOP_TRIGGER_FILES).started"]
  requirements: {cpu: {min: 1, max: 1}}
  policy: {concurrency: 2}
`;
writeFileSync(join(dir, "tasks", "latency.yaml"), task);

const odop = spawn(process.execPath, [join(ROOT, "src/cli/odop.ts"), "run", join(dir, "tasks"), "--run", "latency", "--no-table", "--", "sleep", String(Math.ceil((files * gapMs) / 1000) + 30)], {
  env: { ...process.env, ODOP_PATH: join(dir, "home") },
  stdio: "ignore",
});
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Let odop start and the cores be seen idle for a hold window.
await wait(4000);

const closedAt = new Map<string, number>();
for (let i = 0; i < files; i += 1) {
  const name = `f${String(i).padStart(3, "0")}.dat`;
  const fd = openSync(join(incoming, name), "w");
  writeSync(fd, Buffer.alloc(1 << 20, i));
  closeSync(fd);
  closedAt.set(name, Date.now());
  await wait(gapMs);
}
const deadline = Date.now() + 30_000;
while (readdirSync(marks).length < files && Date.now() < deadline) await wait(100);
odop.kill("SIGINT");

const latencies = [...closedAt]
  .map(([name, closed]) => {
    const mark = join(marks, `${name}.started`);
    return existsSync(mark) ? Number(readFileSync(mark, "utf8").trim()) - closed : Number.NaN;
  })
  .filter((x) => Number.isFinite(x))
  .sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
process.stdout.write(
  `bench/trigger: ${latencies.length} of ${files} files ran; file closed → run stage started: ` +
    `p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${latencies.at(-1) ?? Number.NaN} ms (goal ≤ 1000 ms; node ${process.version})\n`,
);
rmSync(dir, { recursive: true, force: true });
