/**
 * `odop agent` and a controller (`odop run --listen`) as separate processes on this
 * machine, through the real push protocol over HTTP on 127.0.0.1: the OpNode's
 * harvestable cores follow a load the test puts on one core.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseCpuset } from "../../src/api/cpuset.ts";
import { EmbeddedClient } from "../../src/store/embedded-client.ts";
import { eventually } from "../support/engine.ts";
import { freePort } from "../support/ports.ts";

const ROOT = join(import.meta.dirname, "../..");
const ODOP = join(ROOT, "src/cli/odop.ts");
const running: ChildProcess[] = [];
/** In the command line of the test's main application, and only there. */
const MARKER = `odop-agent-test-main-${process.pid}`;
afterEach(() => {
  for (const c of running.splice(0)) c.kill("SIGKILL");
});

function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env } });
  running.push(child);
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}


/** The harvestable cores of `node` from the live run's store (in-process: spawning a CLI per poll would load the very cores measured). */
async function harvestable(client: EmbeddedClient, node: string): Promise<number[] | undefined> {
  const status = (await client.get("OpNode", undefined, node).catch(() => undefined))?.status;
  return status?.harvestable === undefined ? undefined : parseCpuset(status.harvestable.cpuset);
}

describe("odop agent pushing to odop run --listen", () => {
  it("makes an OpNode whose harvestable cores follow a load on one core", async () => {
    const cores = availableParallelism();
    const busyCore = cores - 1;
    const dir = mkdtempSync(join(tmpdir(), "odop-agent-"));
    mkdirSync(join(dir, "agents"));
    writeFileSync(join(dir, "agents", "idle.yaml"), "apiVersion: odop.io/v1alpha1\nkind: OpTask\nmetadata: {name: idle}\nspec: {trigger: {manual: {}}, run: {command: ['true']}}\n");
    writeFileSync(join(dir, "token"), "agent-secret\n");
    const env = { ODOP_PATH: join(dir, "home") };
    const port = await freePort();
    const controller = start(process.execPath, [ODOP, "run", join(dir, "agents"), "--listen", `127.0.0.1:${port}`, "--agent-token-file", join(dir, "token"), "--node-status-interval", "500ms", "--interval", "250ms", "--no-table", "--", "sleep", "120"], env);
    await eventually(() => (controller.output().includes("node agents: push to") ? true : undefined), "the controller listening");
    const client = new EmbeddedClient(join(dir, "home", "runs", "agents", "odop.sock"));
    const agent = start(process.execPath, [ODOP, "agent", "--controller", `http://127.0.0.1:${port}`, "--token-file", join(dir, "token"), "--node", "agent-node", "--interval", "250ms", "--gpu", "off", "--main-command", MARKER], env);

    // Idle: the core the test will load is harvestable.
    const idle = await eventually(async () => {
      const h = await harvestable(client, "agent-node");
      return h?.includes(busyCore) === true ? h : undefined;
    }, `core ${busyCore} harvestable before the load`, 30_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\nagent: ${agent.output().slice(-600)}\ncontroller: ${controller.output().slice(-600)}`);
    });
    expect(idle.every((c) => c >= 0 && c < cores)).toBe(true);

    // The main application: a busy loop pinned to that core (found by its command line, so other load on this machine does not count).
    const load = start("taskset", ["-c", String(busyCore), process.execPath, "-e", "for(;;){}", MARKER]);
    await eventually(async () => ((await harvestable(client, "agent-node"))?.includes(busyCore) === false ? true : undefined), `core ${busyCore} no longer harvestable under load`, 30_000);

    load.child.kill("SIGKILL");
    await eventually(async () => ((await harvestable(client, "agent-node"))?.includes(busyCore) === true ? true : undefined), `core ${busyCore} harvestable again after the load`, 30_000);
    // And as people see it.
    const get = spawnSync(process.execPath, [ODOP, "get", "nodes", "--run", "agents"], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8" });
    expect(get.stdout).toMatch(new RegExp(`^agent-node +agent +${cores} +\\d+`, "m"));
    // The local backend runs stages here: the task's execution went to this machine's node, never to the agent's.
    const executions = await client.list("OpExecution");
    expect(executions.map((e) => [e.status?.phase, e.status?.node])).toEqual([["Succeeded", hostname()]]);
    expect(agent.child.exitCode).toBeNull();
    expect(controller.output()).not.toMatch(/error/i);
  }, 120_000);

  it("refuses a controller without a token for its agents, and an agent without a controller, naming the flag", () => {
    const dir = mkdtempSync(join(tmpdir(), "odop-agent-"));
    mkdirSync(join(dir, "t"));
    writeFileSync(join(dir, "t", "idle.yaml"), "apiVersion: odop.io/v1alpha1\nkind: OpTask\nmetadata: {name: idle}\nspec: {trigger: {manual: {}}, run: {command: ['true']}}\n");
    const env: NodeJS.ProcessEnv = { ...process.env, ODOP_PATH: join(dir, "home"), ODOP_AGENT_TOKEN: "" };
    delete env["ODOP_AGENT_TOKEN_FILE"];
    delete env["ODOP_CONTROLLER_URL"];
    const run = spawnSync(process.execPath, [ODOP, "run", join(dir, "t"), "--listen", "127.0.0.1:1"], { env, encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("--agent-token-file (ODOP_AGENT_TOKEN_FILE) or ODOP_AGENT_TOKEN: agents must authenticate");
    const agent = spawnSync(process.execPath, [ODOP, "agent", "--interval", "50ms"], { env: { ...env, ODOP_AGENT_TOKEN: "x" }, encoding: "utf8" });
    expect(agent.status).toBe(2);
    expect(agent.stderr).toContain("--controller (ODOP_CONTROLLER_URL): the controller's URL is required");
    expect(agent.stderr).toContain("--interval: must be at least 100 ms");
  });
});
