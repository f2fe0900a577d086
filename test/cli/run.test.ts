/**
 * `odop run` as people run it: the real command in child processes, with a real main
 * application, then `odop get`/`describe`/`logs` and actions from "another terminal".
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../support/engine.ts";

const ROOT = join(import.meta.dirname, "../..");
const ODOP = join(ROOT, "src/cli/odop.ts");
const running: ChildProcess[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.kill("SIGKILL");
});

type Result = { code: number | null; stdout: string; stderr: string };

function odopSync(args: string[], env: NodeJS.ProcessEnv): Result {
  const r = spawnSync(process.execPath, [ODOP, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function odopAsync(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; result: Promise<Result> } {
  const child = spawn(process.execPath, [ODOP, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  running.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<Result>((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
  return { child, result };
}

function sandbox() {
  const dir = mkdtempSync(join(tmpdir(), "odop-run-"));
  return { dir, env: { ODOP_PATH: join(dir, "odop-home") } };
}

const FAST = ["--interval", "250ms", "--hold", "500ms"];

function writeTask(dir: string, name: string, body: string): string {
  const tasks = join(dir, "tasks");
  mkdirSync(tasks, { recursive: true });
  writeFileSync(join(tasks, `${name}.yaml`), body);
  return tasks;
}

describe("odop run", () => {
  it("runs examples/local next to its simulation and publishes every result", async () => {
    const { dir, env } = sandbox();
    const out = join(dir, "sim");
    const tasks = join(dir, "local");
    mkdirSync(tasks);
    for (const f of readdirSync(join(ROOT, "examples/local")).filter((f) => f.endsWith(".yaml"))) {
      writeFileSync(join(tasks, f), readFileSync(join(ROOT, "examples/local", f), "utf8").replaceAll("/tmp/odop-local", out));
    }
    const { result } = odopAsync(["run", tasks, ...FAST, "--", process.execPath, join(ROOT, "examples/local/simulation.mjs"), "--steps", "3", "--work", "2e7", "--io-ms", "700", "--snapshot-mb", "1", "--out", out], env);
    const r = await result;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^done: \d+ Succeeded; main application exit 0$/m);
    expect(readdirSync(join(out, "results", "compressed")).sort()).toEqual(["step_0001.dat.gz", "step_0002.dat.gz", "step_0003.dat.gz"]);
    expect(readFileSync(join(out, "results", "SHA256SUMS"), "utf8")).toMatch(/step_0003\.dat\.gz/);
    expect(readFileSync(join(out, "results", "latest-progress.txt"), "utf8")).toMatch(/step 3\/3 done/);

    const get = odopSync(["get", "all"], env);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/^run local \(not running; last saved state\)$/m);
    expect(get.stdout).toMatch(/^compress-snapshots\s+fileIn .*\s+0\s+3\s+0\s+Succeeded\s+True$/m);
  }, 120_000);

  it("loses and repeats nothing when it is killed and started again", async () => {
    const { dir, env } = sandbox();
    const marker = join(dir, "marker");
    const tasks = writeTask(dir, "once", `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata: {name: once}
spec:
  trigger: {manual: {}}
  run:
    script: |
      echo start >> ${marker}
      sleep 2
      echo end >> ${marker}
`);
    const args = ["run", tasks, "--run", "crash", ...FAST, "--", "sleep", "4"];
    const first = odopAsync(args, env);
    await eventually(() => (existsSync(marker) ? true : undefined), "the stage to start");
    first.child.kill("SIGKILL");
    await first.result;

    const second = await odopAsync(args, env).result;
    expect(second.code).toBe(0);
    expect(readFileSync(marker, "utf8")).toBe("start\nend\n");
    const get = odopSync(["get", "--run", "crash"], env);
    expect(get.stdout).toMatch(/^once-\w+\s+once\s+Succeeded\s/m);
  }, 60_000);

  it("stops cleanly on Ctrl-C and runs the interrupted execution again next time", async () => {
    const { dir, env } = sandbox();
    const marker = join(dir, "marker");
    const tasks = writeTask(dir, "long", `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata: {name: long}
spec:
  trigger: {manual: {}}
  run:
    command: ["bash", "-c", "echo start >> ${marker}; sleep 1; echo end >> ${marker}"]
`);
    const args = ["run", tasks, "--run", "ctrlc", ...FAST, "--", "sleep", "3"];
    const first = odopAsync(args, env);
    await eventually(() => (existsSync(marker) ? true : undefined), "the stage to start");
    first.child.kill("SIGINT");
    const r = await first.result;
    expect(r.code).toBe(130);
    expect(readFileSync(marker, "utf8")).toBe("start\n");
    const get = odopSync(["get", "--run", "ctrlc"], env);
    expect(get.stdout).toMatch(/^long-\w+\s+long\s+Pending\s.*Interrupted$/m);

    const second = await odopAsync(args, env).result;
    expect(second.code).toBe(0);
    expect(readFileSync(marker, "utf8")).toBe("start\nstart\nend\n");
  }, 60_000);

  it("is steered from another terminal: get, describe, logs, pause and resume", async () => {
    const { dir, env } = sandbox();
    const tasks = writeTask(dir, "steer", `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata: {name: steer}
spec:
  trigger: {manual: {}}
  run:
    command: ["bash", "-c", "echo working; sleep 30"]
`);
    const live = odopAsync(["run", tasks, "--run", "steer", ...FAST, "--", "sleep", "20"], env);
    const name = await eventually(() => {
      const m = /^(steer-\w+)\s+steer\s+Running\s/m.exec(odopSync(["get", "--run", "steer"], env).stdout);
      return m?.[1];
    }, "a running execution");
    expect(odopSync(["get", "--run", "steer"], env).stdout).toMatch(/^run steer \(live\)$/m);
    await eventually(() => (odopSync(["logs", "--run", "steer", name], env).stdout === "working\n" ? true : undefined), "its log");
    expect(odopSync(["pause", "--run", "steer", name], env).stdout).toBe(`${name}: spec.action set to Pause\n`);
    await eventually(() => (/Phase:\s+Paused \(PausedByUser\)/.test(odopSync(["describe", "--run", "steer", name], env).stdout) ? true : undefined), "Paused");
    expect(odopSync(["resume", "--run", "steer", name], env).stdout).toBe(`${name}: spec.action set to Run\n`);
    await eventually(() => (/Phase:\s+Running \(ResumedByUser\)/.test(odopSync(["describe", "--run", "steer", name], env).stdout) ? true : undefined), "Running again");
    const described = odopSync(["describe", "--run", "steer", name], env).stdout;
    expect(described).toMatch(/Events:\n/);
    expect(described).toMatch(/Normal\s+Paused\s/);
    odopSync(["stop", "--run", "steer", name], env);
    await eventually(() => (/Phase:\s+Cancelled \(StoppedByUser\)/.test(odopSync(["describe", "--run", "steer", name], env).stdout) ? true : undefined), "Cancelled");
    live.child.kill("SIGINT");
    expect((await live.result).code).toBe(130);
  }, 60_000);

  it("keeps the notification key out of the stages' environment", async () => {
    const { dir, env } = sandbox();
    const seen = join(dir, "seen");
    const tasks = writeTask(dir, "env", `apiVersion: odop.io/v1alpha1\nkind: OpTask\nmetadata: {name: env}\nspec:\n  trigger: {manual: {}}\n  run: {command: ["bash", "-c", "echo \\"key=\${ODOP_NOTIFY_KEY:-unset} home=\${ODOP_PATH:+set}\\" > ${seen}"]}\n`);
    const r = await odopAsync(["run", tasks, "--run", "env", ...FAST, "--", "sleep", "1"], { ...env, ODOP_NOTIFY_KEY: "s3cret" }).result;
    expect(r.code).toBe(0);
    expect(readFileSync(seen, "utf8")).toBe("key=unset home=set\n");
  }, 60_000);

  it("suspends a task whose manifest is gone from PATH on the next run", async () => {
    const { dir, env } = sandbox();
    const manifest = (name: string) => `apiVersion: odop.io/v1alpha1\nkind: OpTask\nmetadata: {name: ${name}}\nspec:\n  trigger: {manual: {}}\n  run: {command: ["true"]}\n`;
    const tasks = writeTask(dir, "keep", manifest("keep"));
    writeFileSync(join(tasks, "drop.yaml"), manifest("drop"));
    const args = ["run", tasks, "--run", "prune", ...FAST, "--", "sleep", "1"];
    expect((await odopAsync(args, env).result).code).toBe(0);
    rmSync(join(tasks, "drop.yaml"));
    const second = await odopAsync(args, env).result;
    expect(second.code).toBe(0);
    expect(second.stderr).toBe(`no longer in ${tasks}, suspended: drop\n`);
    expect(odopSync(["get", "tasks", "--run", "prune"], env).stdout).toMatch(/^drop\s.*False \(Suspended\)$/m);
  }, 60_000);

  it("exits 1 when an execution failed, and 2 with the problems when a manifest is invalid", async () => {
    const { dir, env } = sandbox();
    const failing = writeTask(dir, "fail", `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata: {name: fail}
spec:
  trigger: {manual: {}}
  run: {command: ["bash", "-c", "exit 4"]}
`);
    const r = await odopAsync(["run", failing, "--run", "fail", ...FAST, "--", "sleep", "1"], env).result;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^failed: fail-\w+: RunFailed: run exited with code 4$/m);

    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "apiVersion: odop.io/v1alpha1\nkind: OpTask\nmetadata: {name: bad}\nspec:\n  trigger: {manual: {}}\n  run: {command: [x]}\n  requirements: {cpu: {min: 4, max: 2}}\n");
    const invalid = odopSync(["run", bad], env);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/spec\.requirements\.cpu\.min: min must not exceed max/);
  }, 60_000);
});
