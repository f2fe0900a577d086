import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { OpTask } from "../../src/api/optask.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { storeContract } from "./contract.ts";

storeContract({
  name: "embedded, in memory",
  make: () => Promise.resolve({ store: new EmbeddedStore(), namespace: "default", cleanup: () => Promise.resolve() }),
});

storeContract({
  name: "embedded, journalled",
  make: () => {
    const folder = mkdtempSync(join(tmpdir(), "odop-store-"));
    const store = new EmbeddedStore({ folder });
    return Promise.resolve({ store, namespace: "default", cleanup: async () => { await store.close(); rmSync(folder, { recursive: true }); } });
  },
});

const task = (name: string): OpTask => ({
  apiVersion: "odop.io/v1alpha1",
  kind: "OpTask",
  metadata: { name, namespace: "default" },
  spec: { trigger: { manual: {} }, run: { command: ["true"] }, policy: { priority: 0, onContention: "pause", concurrency: 1 }, suspend: false },
});

describe("embedded store journal", () => {
  it("restores every acknowledged change after a restart, with resourceVersions that keep increasing", async () => {
    const folder = mkdtempSync(join(tmpdir(), "odop-journal-"));
    const first = new EmbeddedStore({ folder });
    const a = await first.create(task("a"));
    await first.create(task("b"));
    await first.updateStatus({ ...a, status: { runs: 7 } });
    await first.delete("OpTask", "default", "b");
    await first.recordEvent({ kind: "OpTask", namespace: "default", name: "a" }, "Normal", "Armed", "trigger armed");
    // No close(): a killed process closes nothing.

    const second = new EmbeddedStore({ folder });
    const restored = await second.get("OpTask", "default", "a");
    expect(restored?.status?.runs).toBe(7);
    expect(restored?.metadata.uid).toBe(a.metadata.uid);
    expect(await second.get("OpTask", "default", "b")).toBeUndefined();
    expect((await second.events()).map((e) => e.reason)).toEqual(["Armed"]);
    const c = await second.create(task("c"));
    expect(c.metadata.resourceVersion).not.toBe(a.metadata.resourceVersion);
    expect(Number(c.metadata.resourceVersion)).toBeGreaterThan(Number(restored?.metadata.resourceVersion));
    await second.close();
  });

  it("ignores a torn last line but refuses a damaged journal", async () => {
    const folder = mkdtempSync(join(tmpdir(), "odop-journal-"));
    const first = new EmbeddedStore({ folder, compactEvery: 1000 });
    await first.create(task("a"));
    await first.create(task("b"));
    appendFileSync(join(folder, "journal.jsonl"), '{"t":"put","o":{"kind":"OpT');
    const second = new EmbeddedStore({ folder });
    expect((await second.list("OpTask")).map((t) => t.metadata.name).sort()).toEqual(["a", "b"]);
    await second.close();

    appendFileSync(join(folder, "journal.jsonl"), 'not json\n{"t":"del","k":"OpTask/default/a"}\n');
    expect(() => new EmbeddedStore({ folder })).toThrow(/damaged journal line/);
  });

  it("folds the journal into the snapshot when it grows", async () => {
    const folder = mkdtempSync(join(tmpdir(), "odop-journal-"));
    const store = new EmbeddedStore({ folder, compactEvery: 5 });
    let t = await store.create(task("a"));
    for (let i = 1; i <= 12; i += 1) t = await store.updateStatus({ ...t, status: { runs: i } });
    const lines = readFileSync(join(folder, "journal.jsonl"), "utf8").split("\n").filter(Boolean);
    expect(lines.length).toBeLessThan(5);
    const reopened = new EmbeddedStore({ folder });
    expect((await reopened.get("OpTask", "default", "a"))?.status?.runs).toBe(12);
  });
});
