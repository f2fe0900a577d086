import { randomBytes } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import type { StageEvent } from "../../src/staging/events.ts";
import { stageOut } from "../../src/staging/publish.ts";
import { prepareWorkspace } from "../../src/staging/workspace.ts";
import { failure, FAST, listTree, scratchDir, serversPerTest } from "./helpers.ts";

const server = serversPerTest();

/** A workspace whose outputs/ holds result.bin (the returned bytes) and a small tree. */
async function workspaceWithOutputs(): Promise<{ ws: string; data: Buffer }> {
  const ws = await scratchDir("odop-ws-");
  await prepareWorkspace(ws);
  const data = randomBytes(50_000);
  await writeFile(join(ws, "outputs/result.bin"), data);
  await mkdir(join(ws, "outputs/plots/2d"), { recursive: true });
  await writeFile(join(ws, "outputs/plots/a.png"), "png-a");
  await writeFile(join(ws, "outputs/plots/2d/b.png"), "png-bb");
  return { ws, data };
}

describe("stageOut to files", () => {
  it("copies to an exact path, creating parents, and into a folder when 'to' ends in '/'", async () => {
    const { ws, data } = await workspaceWithOutputs();
    const dest = await scratchDir();
    const results = await stageOut(ws, [
      { from: "outputs/result.bin", to: join(dest, "archive/run1/renamed.bin") },
      { from: "outputs/result.bin", to: `${pathToFileURL(join(dest, "by-url")).href}/` },
    ]);
    expect(await readFile(join(dest, "archive/run1/renamed.bin"))).toEqual(data);
    expect(await readFile(join(dest, "by-url/result.bin"))).toEqual(data);
    expect(results[1]).toMatchObject({ type: "staged", to: join(dest, "by-url/result.bin"), bytes: 50_000 });
    // No temporary file survives next to the published ones.
    expect(await listTree(dest)).toEqual(["archive/", "archive/run1/", "archive/run1/renamed.bin", "by-url/", "by-url/result.bin"]);
  });

  it("replaces an existing file, so a retried publish completes", async () => {
    const { ws, data } = await workspaceWithOutputs();
    const dest = await scratchDir();
    await writeFile(join(dest, "r.bin"), "stale half-written content");
    await stageOut(ws, [{ from: "outputs/result.bin", to: join(dest, "r.bin") }]);
    await stageOut(ws, [{ from: "outputs/result.bin", to: join(dest, "r.bin") }]);
    expect(await readFile(join(dest, "r.bin"))).toEqual(data);
    expect(await listTree(dest)).toEqual(["r.bin"]);
  });

  it("copies folders recursively", async () => {
    const { ws } = await workspaceWithOutputs();
    const dest = await scratchDir();
    const [result] = await stageOut(ws, [{ from: "outputs/plots", to: `${dest}/` }]);
    expect(result).toMatchObject({ type: "staged", kind: "folder", files: 2, bytes: 11 });
    expect(await listTree(dest)).toEqual(["plots/", "plots/2d/", "plots/2d/b.png", "plots/a.png"]);
    expect(await readFile(join(dest, "plots/2d/b.png"), "utf8")).toBe("png-bb");
  });

  it("refuses to publish through a symlink that leaves the workspace", async () => {
    const { ws } = await workspaceWithOutputs();
    const secrets = await scratchDir("odop-secrets-");
    await writeFile(join(secrets, "id_rsa"), "PRIVATE");
    await symlink(join(secrets, "id_rsa"), join(ws, "outputs/plots/innocent.png"));
    await symlink(secrets, join(ws, "outputs/all"));
    const dest = await scratchDir();

    const inFolder = await failure(stageOut(ws, [{ from: "outputs/plots", to: `${dest}/` }]));
    expect(inFolder.reason).toBe("OutsideWorkspace");
    expect(inFolder.message).toContain(join(ws, "outputs/plots/innocent.png"));
    expect(inFolder.message).toContain("escapes the workspace");

    const direct = await failure(stageOut(ws, [{ from: "outputs/all/id_rsa", to: join(dest, "x") }]));
    expect(direct.reason).toBe("OutsideWorkspace");
    expect(direct.message).toContain('"outputs/all/id_rsa" escapes the workspace');

    const tree = await listTree(dest);
    expect(tree.filter((p) => !p.endsWith("/"))).not.toContain("plots/innocent.png");
    expect(tree).not.toContain("x");
  });

  it("fails on a missing output naming it, and skips a missing optional one", async () => {
    const { ws } = await workspaceWithOutputs();
    const dest = await scratchDir();
    const error = await failure(stageOut(ws, [{ from: "outputs/nope.h5", to: `${dest}/` }]));
    expect(error.reason).toBe("NotFound");
    expect(error.message).toContain("output 0 (from outputs/nope.h5)");

    const events: StageEvent[] = [];
    const results = await stageOut(
      ws,
      [
        { from: "outputs/nope.h5", to: `${dest}/`, optional: true },
        { from: "outputs/plots/a.png", to: `${dest}/` },
      ],
      { report: (e) => events.push(e) },
    );
    expect(results.map((r) => r.type)).toEqual(["skipped", "staged"]);
    expect(events.map((e) => e.type)).toEqual(["skipped", "staged"]);
    expect(await listTree(dest)).toEqual(["a.png"]);
  });

  it("refuses s3:// plainly", async () => {
    const { ws } = await workspaceWithOutputs();
    const error = await failure(stageOut(ws, [{ from: "outputs/result.bin", to: "s3://bucket/out/" }]));
    expect(error.reason).toBe("Unsupported");
    expect(error.message).toContain("s3 staging is not available in this backend yet");
  });
});

describe("stageOut over HTTP", () => {
  it("PUTs the exact bytes with their content-length, appending the base name to a folder URL", async () => {
    const s = await server((_req, res) => {
      res.writeHead(201);
      res.end();
    });
    const { ws, data } = await workspaceWithOutputs();
    await writeFile(join(ws, "outputs/my file.txt"), "hello");
    const results = await stageOut(
      ws,
      [
        { from: "outputs/result.bin", to: `${s.base}/upload/run1.bin` },
        { from: "outputs/my file.txt", to: `${s.base}/upload/` },
      ],
      { http: FAST },
    );
    expect(s.requests).toHaveLength(2);
    const [first, second] = s.requests;
    expect(first).toMatchObject({ method: "PUT", url: "/upload/run1.bin" });
    expect(first!.headers["content-length"]).toBe("50000");
    expect(first!.body.equals(data)).toBe(true);
    expect(second).toMatchObject({ method: "PUT", url: "/upload/my%20file.txt" });
    expect(second!.body.toString()).toBe("hello");
    expect(results[1]).toMatchObject({ type: "staged", to: `${s.base}/upload/my%20file.txt`, bytes: 5 });
  });

  it("retries a 503 and sends the whole file again", async () => {
    const s = await server((_req, res, n) => {
      res.writeHead(n === 1 ? 503 : 200);
      res.end();
    });
    const { ws, data } = await workspaceWithOutputs();
    await stageOut(ws, [{ from: "outputs/result.bin", to: `${s.base}/r` }], { http: FAST });
    expect(s.requests).toHaveLength(2);
    expect(s.requests[1]!.body.equals(data)).toBe(true);
  });

  it("does not retry a 403, and names the output", async () => {
    const s = await server((_req, res) => {
      res.writeHead(403);
      res.end("bucket is read-only");
    });
    const { ws } = await workspaceWithOutputs();
    const error = await failure(stageOut(ws, [{ from: "outputs/result.bin", to: `${s.base}/r` }], { http: FAST }));
    expect(s.requests).toHaveLength(1);
    expect(error).toMatchObject({ reason: "Http", transient: false });
    expect(error.message).toContain("output 0 (from outputs/result.bin)");
    expect(error.message).toContain("HTTP 403");
    expect(error.message).toContain("bucket is read-only");
  });

  it("refuses a folder to an http destination without sending anything", async () => {
    const s = await server((_req, res) => res.end());
    const { ws } = await workspaceWithOutputs();
    const error = await failure(stageOut(ws, [{ from: "outputs/plots", to: `${s.base}/up/` }], { http: FAST }));
    expect(error.message).toContain("outputs/plots is a folder, and an http(s) destination takes one file");
    expect(s.requests).toHaveLength(0);
  });

  it("fails, even for an optional output, when the destination answers 404", async () => {
    const s = await server((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    const { ws } = await workspaceWithOutputs();
    const error = await failure(stageOut(ws, [{ from: "outputs/result.bin", to: `${s.base}/nowhere`, optional: true }], { http: FAST }));
    expect(error.message).toContain("HTTP 404");
  });
});
