#!/usr/bin/env node
// A synthetic "simulation" with bursty per-core load, standing in for a real HPC code:
// each step computes on WORKERS threads (a fixed amount of work each, so a slowdown
// shows as a longer step), then writes a snapshot and waits on "I/O" with its cores
// idle. Every third step computes on half of its threads only, leaving cores idle
// inside the step too. It ends by printing its compute time.
//
//   node simulation.mjs [--steps 8] [--workers 2] [--work 3e7] [--io-ms 1500]
//                       [--out /tmp/odop-local] [--snapshot-mb 8]
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const steps = Number(args.steps ?? process.env.SIM_STEPS ?? 8);
const workers = Number(args.workers ?? process.env.SIM_WORKERS ?? availableParallelism());
const work = Number(args.work ?? process.env.SIM_WORK ?? 3e7);
const ioMs = Number(args["io-ms"] ?? process.env.SIM_IO_MS ?? 1500);
const out = args.out ?? process.env.SIM_OUT ?? "/tmp/odop-local";
const snapshotMb = Number(args["snapshot-mb"] ?? process.env.SIM_SNAPSHOT_MB ?? 8);

const CODE = `
const { parentPort, workerData } = require("node:worker_threads");
let x = 0;
for (let i = 0; i < workerData; i += 1) x = (x * 1103515245 + 12345) % 2147483648;
parentPort.postMessage(x);
`;

function compute(threads) {
  return Promise.all(
    Array.from({ length: threads }, () => new Promise((resolve, reject) => {
      const w = new Worker(CODE, { eval: true, workerData: work });
      w.once("message", resolve);
      w.once("error", reject);
    })),
  );
}

mkdirSync(join(out, "snapshots"), { recursive: true });
let computeMs = 0;
const started = Date.now();
for (let step = 1; step <= steps; step += 1) {
  const threads = step % 3 === 0 ? Math.max(1, Math.floor(workers / 2)) : workers;
  const t0 = Date.now();
  await compute(threads);
  computeMs += Date.now() - t0;
  // Snapshot: text that compresses like real output does (not too well), written to a
  // temporary name and renamed, as careful codes do.
  const name = `step_${String(step).padStart(4, "0")}.dat`;
  const data = randomBytes(Math.floor((snapshotMb * 2 ** 20 * 3) / 4)).toString("base64");
  writeFileSync(join(out, "snapshots", `.${name}.tmp`), data);
  renameSync(join(out, "snapshots", `.${name}.tmp`), join(out, "snapshots", name));
  appendFileSync(join(out, "progress.log"), `${new Date().toISOString()} step ${step}/${steps} done\n`);
  await new Promise((r) => setTimeout(r, ioMs));
}
console.log(JSON.stringify({ steps, workers, computeMs, wallMs: Date.now() - started }));
