import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runStageSpec } from "../../src/staging/stage-spec.ts";
import { cleanupScratch, FAST, scratchDir, startServer, type TestServer } from "./helpers.ts";

let servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers) await s.close();
  servers = [];
  await cleanupScratch();
});

/** Captures what a stage process would print. */
function capture() {
  const text = { stdout: "", stderr: "" };
  const out = {
    stdout: { write: (s: string) => (text.stdout += s) },
    stderr: { write: (s: string) => (text.stderr += s) },
  };
  return { text, out };
}

async function specFile(spec: unknown): Promise<string> {
  const path = join(await scratchDir(), "stage.json");
  await writeFile(path, typeof spec === "string" ? spec : JSON.stringify(spec));
  return path;
}

describe("runStageSpec", () => {
  it("configure: creates the workspace layout, stages the inputs, prints one line each, exits 0", async () => {
    const src = await scratchDir();
    await writeFile(join(src, "a.txt"), "hello");
    const s = await startServer((_req, res) => {
      res.writeHead(200, { "content-length": "12345" });
      res.end(Buffer.alloc(12345));
    });
    servers.push(s);
    const ws = join(await scratchDir(), "exec-1");
    const path = await specFile({
      stage: "configure",
      workspace: ws,
      inputs: [
        { from: join(src, "a.txt"), to: "inputs/a.txt" },
        { from: `${s.base}/data/x.bin`, to: "inputs/x" },
        { from: join(src, "missing"), to: "inputs/m", optional: true },
      ],
    });
    const { text, out } = capture();
    expect(await runStageSpec(path, out, { http: FAST })).toBe(0);
    expect(text.stdout.split("\n")).toEqual([
      `staged in ${join(src, "a.txt")} → inputs/a.txt (5 bytes)`,
      `staged in ${s.base}/data/x.bin → inputs/x (12345 bytes)`,
      `skipped input 2 ${join(src, "missing")}: optional input not found`,
      "configure done",
      "",
    ]);
    expect(text.stderr).toBe("");
    for (const folder of ["inputs", "outputs", "logs"]) expect((await stat(join(ws, folder))).isDirectory()).toBe(true);
    expect(await readFile(join(ws, "inputs/a.txt"), "utf8")).toBe("hello");
  });

  it("publish: stages the outputs out and exits 0", async () => {
    const ws = await scratchDir();
    const dest = await scratchDir();
    await writeFile(join(ws, "r.txt"), "result");
    const path = await specFile({ stage: "publish", workspace: ws, outputs: [{ from: "r.txt", to: `${dest}/` }] });
    const { text, out } = capture();
    expect(await runStageSpec(path, out)).toBe(0);
    expect(text.stdout).toContain(`published r.txt → ${join(dest, "r.txt")} (6 bytes)`);
    expect(await readFile(join(dest, "r.txt"), "utf8")).toBe("result");
  });

  it("exits 1 and prints the error when staging fails", async () => {
    const ws = join(await scratchDir(), "ws");
    const path = await specFile({ stage: "configure", workspace: ws, inputs: [{ from: "/nonexistent/odop/in.h5", to: "inputs/in.h5" }] });
    const { text, out } = capture();
    expect(await runStageSpec(path, out)).toBe(1);
    expect(text.stderr).toBe("configure failed: input 0 (from /nonexistent/odop/in.h5): /nonexistent/odop/in.h5: not found\n");
  });

  it("exits 1 when the publish workspace does not exist", async () => {
    const ws = join(await scratchDir(), "gone");
    const path = await specFile({ stage: "publish", workspace: ws, outputs: [{ from: "r.txt", to: "/tmp/x" }] });
    const { text, out } = capture();
    expect(await runStageSpec(path, out)).toBe(1);
    expect(text.stderr).toContain(`workspace ${ws} does not exist`);
  });

  it.each([
    ["a path that leaves the workspace", { stage: "configure", workspace: "/w", inputs: [{ from: "/d/a", to: "../a" }] }, "inputs[0].to: must stay inside the execution's workspace"],
    ["an unknown stage", { stage: "run", workspace: "/w" }, "stage: Invalid option: expected one of"],
    ["a relative workspace", { stage: "publish", workspace: "w" }, "workspace: must be an absolute path"],
    ["a misspelt field", { stage: "publish", workspace: "/w", output: [] }, 'unknown field "output"'],
    ["outputs on configure", { stage: "configure", workspace: "/w", outputs: [] }, "outputs: configure stages inputs only"],
    ["a bad location", { stage: "publish", workspace: "/w", outputs: [{ from: "a", to: "ftp://x/a" }] }, "outputs[0].to: must be an absolute path or a URL"],
    ["text that is not JSON", "{stage: configure", "not JSON"],
  ])("exits 2 on %s, naming the field", async (_what, spec, message) => {
    const path = await specFile(spec);
    const { text, out } = capture();
    expect(await runStageSpec(path, out)).toBe(2);
    expect(text.stderr).toContain(`invalid stage spec ${path}: `);
    expect(text.stderr).toContain(message);
    expect(text.stdout).toBe("");
  });

  it("exits 2 when the spec file cannot be read", async () => {
    const path = join(await scratchDir(), "absent.json");
    const { text, out } = capture();
    expect(await runStageSpec(path, out)).toBe(2);
    expect(text.stderr).toContain("cannot read it");
  });
});
