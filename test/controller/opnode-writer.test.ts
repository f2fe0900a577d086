import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { OpNodeStatus } from "../../src/api/opnode.ts";
import { FakeClock } from "../../src/controller/clock.ts";
import { OpNodeWriter } from "../../src/controller/opnode-writer.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";

const status = (cores: number, memory = "8192Mi"): OpNodeStatus => ({
  source: "slurm",
  capacity: { cores: 8, memory: "16384Mi", gpus: 0 },
  harvestable: { cores, cpuset: cores === 0 ? "" : `0-${cores - 1}`, memory, gpus: 0 },
  slurm: { state: ["MIXED"], allocatedCores: 8 - cores },
});

describe("OpNodeWriter", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("creates OpNodes, writes changes at most every minIntervalMs, and unchanged nodes only as a heartbeat", async () => {
    const dir = mkdtempSync(join(tmpdir(), "odop-opnode-"));
    dirs.push(dir);
    const store = new EmbeddedStore({ folder: dir });
    const clock = new FakeClock();
    const writer = new OpNodeWriter({ store, clock, log: pino({ level: "silent" }), minIntervalMs: 10_000, heartbeatMs: 60_000 });

    expect(await writer.write([{ name: "n1", status: status(6) }, { name: "n2", status: status(8) }])).toBe(2);
    const n1 = await store.get("OpNode", undefined, "n1");
    expect(n1?.status).toMatchObject({ source: "slurm", harvestable: { cores: 6 }, lastHeartbeatTime: "2026-01-01T00:00:00Z" });

    clock.advance(5_000);
    expect(await writer.write([{ name: "n1", status: status(2) }])).toBe(0); // changed, but too soon
    clock.advance(5_000);
    expect(await writer.write([{ name: "n1", status: status(2) }, { name: "n2", status: status(8, "8200Mi") }])).toBe(1); // n2: memory within its rounding
    expect((await store.get("OpNode", undefined, "n1"))?.status?.harvestable?.cores).toBe(2);

    clock.advance(50_000);
    expect(await writer.write([{ name: "n1", status: status(2) }, { name: "n2", status: status(8) }])).toBe(1); // n2's heartbeat is due (60 s)
    expect((await store.get("OpNode", undefined, "n2"))?.status?.lastHeartbeatTime).toBe("2026-01-01T00:01:00Z");
    await store.close();
  });

  it("writes at most maxWritesPerSecond for all nodes together, changed nodes and the longest unwritten first", async () => {
    const dir = mkdtempSync(join(tmpdir(), "odop-opnode-"));
    dirs.push(dir);
    const store = new EmbeddedStore({ folder: dir });
    const clock = new FakeClock();
    const writer = new OpNodeWriter({ store, clock, log: pino({ level: "silent" }), minIntervalMs: 1_000, heartbeatMs: 60_000, maxWritesPerSecond: 5 });
    const nodes = (cores: (i: number) => number) => Array.from({ length: 50 }, (_, i) => ({ name: `n${String(i).padStart(2, "0")}`, status: status(cores(i)) }));

    expect(await writer.write(nodes(() => 8))).toBe(10); // a burst of two seconds' worth
    clock.advance(1_000);
    expect(await writer.write(nodes(() => 8))).toBe(5);
    for (let s = 0; s < 7; s++) {
      clock.advance(1_000);
      expect(await writer.write(nodes(() => 8))).toBe(5);
    }
    expect((await store.list("OpNode")).length).toBe(50);
    // A minute later every node's heartbeat is due, and n49 changed: it goes first.
    clock.advance(61_000);
    expect(await writer.write(nodes((i) => (i === 49 ? 2 : 8)))).toBe(10);
    expect((await store.get("OpNode", undefined, "n49"))?.status?.harvestable?.cores).toBe(2);
    await store.close();
  });
});
