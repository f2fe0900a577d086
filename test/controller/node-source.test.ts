import { describe, expect, it } from "vitest";
import { type NodeSource, onlyNode } from "../../src/controller/node-source.ts";
import type { NodeView } from "../../src/scheduler/types.ts";

const view = (name: string): NodeView => ({ name, cores: [{ id: 0, mainUsage: 0, harvestable: true }], memoryAvailableBytes: 1, labels: {}, stale: false });

describe("onlyNode", () => {
  it("offers only the named node for placements, and still publishes every node", async () => {
    let refreshed = 0;
    const source: NodeSource = {
      refresh: () => {
        refreshed++;
        return Promise.resolve();
      },
      views: () => [view("here"), view("elsewhere")],
      latest: () => undefined,
      opNodes: () => [{ name: "here", status: {} }, { name: "elsewhere", status: {} }],
    };
    const only = onlyNode(source, "here");
    await only.refresh();
    expect(refreshed).toBe(1);
    expect(only.views(0).map((v) => v.name)).toEqual(["here"]);
    expect(only.opNodes?.("2026-11-21T00:00:00Z").map((n) => n.name)).toEqual(["here", "elsewhere"]);
  });
});
