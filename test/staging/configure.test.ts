import { randomBytes } from "node:crypto";
import { mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { stageIn } from "../../src/staging/configure.ts";
import type { StageEvent } from "../../src/staging/events.ts";
import { prepareWorkspace } from "../../src/staging/workspace.ts";
import { failure, FAST, listTree, scratchDir, serversPerTest } from "./helpers.ts";

const server = serversPerTest();

async function workspace(): Promise<string> {
  const ws = await scratchDir("odop-ws-");
  await prepareWorkspace(ws);
  return ws;
}

describe("stageIn from files", () => {
  it("copies a file from an absolute path and from a file:/// URL", async () => {
    const ws = await workspace();
    const src = await scratchDir();
    const data = randomBytes(70_000);
    await writeFile(join(src, "snap 1.h5"), data);
    const results = await stageIn(ws, [
      { from: join(src, "snap 1.h5"), to: "inputs/a.h5" },
      { from: pathToFileURL(join(src, "snap 1.h5")).href, to: "inputs/b.h5" },
    ]);
    expect(await readFile(join(ws, "inputs/a.h5"))).toEqual(data);
    expect(await readFile(join(ws, "inputs/b.h5"))).toEqual(data);
    expect(results.map((r) => r.type)).toEqual(["staged", "staged"]);
    expect(results[0]).toMatchObject({ kind: "file", files: 1, bytes: 70_000, to: "inputs/a.h5" });
    expect(await listTree(join(ws, "inputs"))).toEqual(["a.h5", "b.h5"]);
  });

  it("copies folders recursively, empty folders and symlinked files included, leaving no temporary files", async () => {
    const ws = await workspace();
    const src = await scratchDir();
    await mkdir(join(src, "run/deep/deeper"), { recursive: true });
    await mkdir(join(src, "run/empty"));
    await writeFile(join(src, "run/top.txt"), "top");
    await writeFile(join(src, "run/deep/deeper/x.bin"), "xyz!");
    await symlink(join(src, "run/top.txt"), join(src, "run/alias.txt"));
    const [result] = await stageIn(ws, [{ from: join(src, "run"), to: "inputs/" }]);
    expect(result).toMatchObject({ type: "staged", kind: "folder", files: 3, bytes: 10, to: "inputs/run" });
    expect(await listTree(join(ws, "inputs"))).toEqual([
      "run/",
      "run/alias.txt",
      "run/deep/",
      "run/deep/deeper/",
      "run/deep/deeper/x.bin",
      "run/empty/",
      "run/top.txt",
    ]);
    expect((await stat(join(ws, "inputs/run/alias.txt"), {})).isFile()).toBe(true);
    expect(await readFile(join(ws, "inputs/run/deep/deeper/x.bin"), "utf8")).toBe("xyz!");
  });

  it("fails on a missing input, naming its index and from", async () => {
    const ws = await workspace();
    const src = await scratchDir();
    await writeFile(join(src, "ok"), "ok");
    const error = await failure(
      stageIn(ws, [
        { from: join(src, "ok"), to: "inputs/ok" },
        { from: join(src, "absent"), to: "inputs/absent" },
      ]),
    );
    expect(error.reason).toBe("NotFound");
    expect(error.message).toContain(`input 1 (from ${join(src, "absent")})`);
    expect(error.message).toContain("not found");
  });

  it("skips a missing optional input and reports it", async () => {
    const ws = await workspace();
    const src = await scratchDir();
    await writeFile(join(src, "ok"), "ok");
    const events: StageEvent[] = [];
    const results = await stageIn(
      ws,
      [
        { from: join(src, "absent"), to: "inputs/absent", optional: true },
        { from: join(src, "ok"), to: "inputs/ok" },
      ],
      { report: (e) => events.push(e) },
    );
    expect(results.map((r) => r.type)).toEqual(["skipped", "staged"]);
    expect(events[0]).toMatchObject({ type: "skipped", index: 0, note: "optional input not found" });
    expect(await listTree(join(ws, "inputs"))).toEqual(["ok"]);
  });

  it("refuses s3:// plainly, before copying anything", async () => {
    const ws = await workspace();
    const src = await scratchDir();
    await writeFile(join(src, "ok"), "ok");
    const error = await failure(
      stageIn(ws, [
        { from: join(src, "ok"), to: "inputs/ok" },
        { from: "s3://bucket/key", to: "inputs/k", optional: true },
      ]),
    );
    expect(error.reason).toBe("Unsupported");
    expect(error.message).toContain("input 1 (from s3://bucket/key)");
    expect(error.message).toContain("s3 staging is not available in this backend yet");
    expect(await listTree(join(ws, "inputs"))).toEqual([]);
  });

  it("refuses destinations that escape the workspace, before copying anything", async () => {
    const ws = await workspace();
    const src = await scratchDir();
    const outside = await scratchDir("odop-outside-");
    await writeFile(join(src, "f"), "data");
    await symlink(outside, join(ws, "inputs/link"));
    for (const to of ["../escaped", "inputs/link/f"]) {
      const error = await failure(
        stageIn(ws, [
          { from: join(src, "f"), to: "inputs/first" },
          { from: join(src, "f"), to },
        ]),
      );
      expect(error.reason).toBe("OutsideWorkspace");
      expect(error.message).toContain(`input 1 (from ${join(src, "f")})`);
      expect(error.message).toContain(`"${to}" escapes the workspace`);
    }
    expect(await listTree(join(ws, "inputs"))).toEqual(["link"]);
    expect(await listTree(outside)).toEqual([]);
  });

  it("does not write through a symlinked folder met inside a folder copy", async () => {
    const ws = await workspace();
    const src = await scratchDir();
    const outside = await scratchDir("odop-outside-");
    await mkdir(join(src, "tree/sub"), { recursive: true });
    await writeFile(join(src, "tree/sub/f"), "data");
    await mkdir(join(ws, "inputs/tree"));
    await symlink(outside, join(ws, "inputs/tree/sub"));
    const error = await failure(stageIn(ws, [{ from: join(src, "tree"), to: "inputs/tree" }]));
    expect(error.reason).toBe("OutsideWorkspace");
    expect(error.message).toContain(join(ws, "inputs/tree/sub"));
    expect(await listTree(outside)).toEqual([]);
  });
});

describe("stageIn over HTTP", () => {
  it("downloads the exact bytes, asking for them unencoded", async () => {
    const data = randomBytes(300_000);
    const s = await server((_req, res) => {
      res.writeHead(200, { "content-length": String(data.length) });
      res.end(data);
    });
    const ws = await workspace();
    const [result] = await stageIn(ws, [{ from: `${s.base}/files/data%20set.bin`, to: "inputs/" }], { http: FAST });
    expect(result).toMatchObject({ type: "staged", to: "inputs/data set.bin", bytes: 300_000 });
    expect(await readFile(join(ws, "inputs/data set.bin"))).toEqual(data);
    expect(s.requests).toHaveLength(1);
    expect(s.requests[0]).toMatchObject({ method: "GET", url: "/files/data%20set.bin" });
    expect(s.requests[0]!.headers["accept-encoding"]).toBe("identity");
    expect(await listTree(join(ws, "inputs"))).toEqual(["data set.bin"]);
  });

  it("retries a 503 and then succeeds, reporting the retry", async () => {
    const s = await server((_req, res, n) => {
      if (n === 1) {
        res.writeHead(503, { "content-type": "text/plain" });
        res.end("busy, come back later");
        return;
      }
      res.end("payload");
    });
    const ws = await workspace();
    const events: StageEvent[] = [];
    await stageIn(ws, [{ from: `${s.base}/x`, to: "inputs/x" }], { http: FAST, report: (e) => events.push(e) });
    expect(await readFile(join(ws, "inputs/x"), "utf8")).toBe("payload");
    expect(s.requests).toHaveLength(2);
    const retry = events.find((e) => e.type === "retry");
    expect(retry).toMatchObject({ type: "retry", attempt: 1, attempts: 3 });
    expect(retry?.type === "retry" && retry.error).toContain("HTTP 503");
    expect(retry?.type === "retry" && retry.error).toContain("busy, come back later");
  });

  it("gives up after the retries on a persistent 5xx, as a transient error", async () => {
    const s = await server((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    const ws = await workspace();
    const error = await failure(stageIn(ws, [{ from: `${s.base}/x`, to: "inputs/x" }], { http: FAST }));
    expect(s.requests).toHaveLength(1 + FAST.retries);
    expect(error.transient).toBe(true);
    expect(error.message).toContain("HTTP 500");
  });

  it("fails on a 404 without retrying, naming the input", async () => {
    const s = await server((_req, res) => {
      res.writeHead(404);
      res.end("no such file");
    });
    const ws = await workspace();
    const error = await failure(stageIn(ws, [{ from: `${s.base}/missing.h5`, to: "inputs/m" }], { http: FAST }));
    expect(s.requests).toHaveLength(1);
    expect(error.reason).toBe("NotFound");
    expect(error.transient).toBe(false);
    expect(error.message).toContain(`input 0 (from ${s.base}/missing.h5)`);
    expect(await listTree(join(ws, "inputs"))).toEqual([]);
  });

  it("skips an optional input that answers 404", async () => {
    const s = await server((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    const ws = await workspace();
    const [result] = await stageIn(ws, [{ from: `${s.base}/m`, to: "inputs/m", optional: true }], { http: FAST });
    expect(result).toMatchObject({ type: "skipped", index: 0 });
    expect(await listTree(join(ws, "inputs"))).toEqual([]);
  });

  it("never retries other 4xx answers", async () => {
    const s = await server((_req, res) => {
      res.writeHead(403);
      res.end("forbidden");
    });
    const ws = await workspace();
    const error = await failure(stageIn(ws, [{ from: `${s.base}/x`, to: "inputs/x" }], { http: FAST }));
    expect(s.requests).toHaveLength(1);
    expect(error).toMatchObject({ reason: "Http", transient: false });
    expect(error.message).toContain("HTTP 403");
  });

  it("detects a body cut short of its content-length and leaves no partial file", async () => {
    const s = await server((_req, res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write(Buffer.alloc(400, 7), () => res.socket?.destroy());
    });
    const ws = await workspace();
    const error = await failure(stageIn(ws, [{ from: `${s.base}/x`, to: "inputs/x" }], { http: { ...FAST, retries: 1 } }));
    expect(error.reason).toBe("Network");
    expect(error.transient).toBe(true);
    expect(error.message).toMatch(/transfer cut short: received \d+ of 1000 bytes \(content-length\)/);
    expect(s.requests).toHaveLength(2);
    expect(await listTree(join(ws, "inputs"))).toEqual([]);
  });

  it("times out a server that never answers", async () => {
    const s = await server(() => undefined);
    const ws = await workspace();
    const error = await failure(stageIn(ws, [{ from: `${s.base}/x`, to: "inputs/x" }], { http: { timeoutMs: 100, retries: 0 } }));
    expect(error).toMatchObject({ reason: "Network", transient: true });
    expect(error.message).toContain("timed out");
  });

  it("sends URL credentials as basic auth and keeps them and query tokens out of messages", async () => {
    const s = await server((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    const ws = await workspace();
    const from = s.base.replace("http://", "http://alice:s3cret@") + "/f?token=t0ps3cret";
    const error = await failure(stageIn(ws, [{ from, to: "inputs/f" }], { http: FAST }));
    const auth = s.requests[0]!.headers.authorization;
    expect(auth).toBe(`Basic ${Buffer.from("alice:s3cret").toString("base64")}`);
    expect(s.requests[0]!.url).toBe("/f?token=t0ps3cret");
    expect(error.message).not.toContain("s3cret");
    expect(error.message).toContain("***");
  });

  it("stops at a connection that is refused, after the retries", async () => {
    const s = await server(() => undefined);
    const base = s.base;
    await s.close(); // closing it again after the test is harmless
    const ws = await workspace();
    const events: StageEvent[] = [];
    const error = await failure(stageIn(ws, [{ from: `${base}/x`, to: "inputs/x" }], { http: FAST, report: (e) => events.push(e) }));
    expect(error).toMatchObject({ reason: "Network", transient: true });
    expect(events.filter((e) => e.type === "retry")).toHaveLength(FAST.retries);
  });
});

describe("stageIn cancellation", () => {
  it("stops a transfer in flight when the signal aborts, as Cancelled", async () => {
    const controller = new AbortController();
    const s = await server(() => controller.abort());
    const ws = await workspace();
    const error = await failure(stageIn(ws, [{ from: `${s.base}/x`, to: "inputs/x" }], { http: FAST, signal: controller.signal }));
    expect(error.reason).toBe("Cancelled");
    expect(error.transient).toBe(false);
    expect(s.requests).toHaveLength(1);
    expect(await listTree(join(ws, "inputs"))).toEqual([]);
  });
});
