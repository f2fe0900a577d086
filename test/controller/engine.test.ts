/** The embedded engine end to end: real store, processes, /proc sampling and files. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { OpExecution } from "../../src/api/opexecution.ts";
import type { OpTask } from "../../src/api/optask.ts";
import { eventually, startEngine, type TestEngine } from "../support/engine.ts";

const engines: TestEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
});

function task(name: string, spec: Partial<OpTask["spec"]>): OpTask {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name, namespace: "default" },
    spec: {
      trigger: { manual: {} },
      run: { command: ["true"] },
      policy: { priority: 0, onContention: "pause", concurrency: 1 },
      suspend: false,
      ...spec,
    },
  };
}

function manual(taskName: string, name: string): OpExecution {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpExecution",
    metadata: { name, namespace: "default" },
    spec: { taskRef: { name: taskName }, executionId: "6f1c2b0e-3d4a-4f5b-8c9d-0e1f2a3b4c5d", trigger: { reason: "Manual" }, action: "Run" },
  };
}

async function phaseOf(t: TestEngine, name: string, want: string[]): Promise<OpExecution> {
  return eventually(async () => {
    const e = await t.store.get("OpExecution", "default", name);
    return e !== undefined && want.includes(e.status?.phase ?? "") ? e : undefined;
  }, `${name} in ${want.join("|")}`);
}

describe("embedded engine", () => {
  it("runs a manual execution through its stages to Succeeded, keeping its output", async () => {
    const t = await startEngine();
    engines.push(t);
    await t.store.create(task("hello", { run: { command: ["bash", "-c", "echo hello from $ODOP_EXECUTION on $ODOP_CORES"] } }));
    await t.store.create(manual("hello", "hello-1"));
    const done = await phaseOf(t, "hello-1", ["Succeeded", "Failed"]);
    expect(done.status?.phase).toBe("Succeeded");
    expect(done.status?.attempts).toBe(1);
    expect(done.status?.cpuset).toMatch(/^\d/);
    const out = readFileSync(join(done.status?.backend?.workspace ?? "", "logs", "run-1.out"), "utf8");
    expect(out).toBe(`hello from hello-1 on ${done.status?.cpuset}\n`);
  });
});
