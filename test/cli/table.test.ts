import { describe, expect, it } from "vitest";
import type { OpNode } from "../../src/api/opnode.ts";
import { NODE_HEADERS, nodeRow, renderTable } from "../../src/cli/table.ts";

describe("odop get nodes", () => {
  it("shows a Slurm node's capacity, harvestable cores and memory, state and heartbeat age", () => {
    const node: OpNode = {
      apiVersion: "odop.io/v1alpha1",
      kind: "OpNode",
      metadata: { name: "n1" },
      spec: { unschedulable: false },
      status: {
        source: "slurm",
        capacity: { cores: 8, memory: "16384Mi", gpus: 0 },
        harvestable: { cores: 6, cpuset: "2-7", memory: "15360Mi", gpus: 0 },
        lastHeartbeatTime: "2026-11-21T10:00:00Z",
        slurm: { state: ["MIXED"], allocatedCores: 2 },
      },
    };
    const bare: OpNode = { apiVersion: "odop.io/v1alpha1", kind: "OpNode", metadata: { name: "n2" }, spec: { unschedulable: false } };
    const now = Date.parse("2026-11-21T10:00:42Z");
    expect(renderTable(NODE_HEADERS, [nodeRow(node, now), nodeRow(bare, now)])).toBe(
      [
        "NODE   SOURCE   CORES   HARVESTABLE   MEMORY    STATE   HEARTBEAT",
        "n1     slurm    8       6 (2-7)       15360Mi   MIXED   42s ago",
        "n2",
      ].join("\n"),
    );
  });
});
