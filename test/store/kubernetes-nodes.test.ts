/** The requests-based view of Kubernetes nodes (pure computation, from API objects). */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { nodeViewsFrom } from "../../src/store/kubernetes-nodes.ts";

const GiB = 1024 ** 3;

function node(name: string, cpu: string, memory: string, ready = true, unschedulable = false): V1Node {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name } },
    spec: { unschedulable },
    status: { allocatable: { cpu, memory }, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  };
}

function pod(nodeName: string, requests: Record<string, string>[], extra: Partial<V1Pod> = {}, init: Record<string, string>[] = []): V1Pod {
  return {
    metadata: { name: `p-${Math.random()}`, namespace: "default", ...extra.metadata },
    spec: {
      nodeName,
      containers: requests.map((r, i) => ({ name: `c${i}`, resources: { requests: r } })),
      initContainers: init.map((r, i) => ({ name: `i${i}`, resources: { requests: r } })),
    },
    status: { phase: "Running", ...extra.status },
  };
}

describe("nodeViewsFrom", () => {
  it("leaves harvestable what pods do not request, rounding requests up to whole cores", () => {
    const [view] = nodeViewsFrom([node("n1", "8", "32Gi")], [pod("n1", [{ cpu: "1500m", memory: "4Gi" }, { cpu: "1", memory: "2Gi" }])], { memoryMarginBytes: GiB });
    expect(view?.cores.filter((c) => c.harvestable).map((c) => c.id)).toEqual([3, 4, 5, 6, 7]);
    expect(view?.memoryAvailableBytes).toBe(32 * GiB - 6 * GiB - GiB);
    expect(view?.stale).toBe(false);
  });

  it("ignores odop's own pods and finished pods, and counts an init container's larger request", () => {
    const views = nodeViewsFrom(
      [node("n1", "4", "8Gi")],
      [
        pod("n1", [{ cpu: "2" }], { metadata: { name: "odop-stage", labels: { "app.kubernetes.io/managed-by": "odop" } } }),
        pod("n1", [{ cpu: "3" }], { status: { phase: "Succeeded" } }),
        pod("n1", [{ cpu: "500m" }], {}, [{ cpu: "2" }]),
      ],
      { memoryMarginBytes: 0 },
    );
    expect(views[0]?.cores.filter((c) => c.harvestable)).toHaveLength(2);
  });

  it("gives nothing on a node that is not Ready or is cordoned, and never less than zero", () => {
    const views = nodeViewsFrom([node("down", "4", "8Gi", false), node("cordoned", "4", "8Gi", true, true), node("full", "2", "1Gi")], [pod("full", [{ cpu: "4", memory: "2Gi" }])], { memoryMarginBytes: 0 });
    expect(views.map((v) => [v.name, v.stale, v.cores.filter((c) => c.harvestable).length, v.memoryAvailableBytes])).toEqual([
      ["down", true, 4, 8 * GiB],
      ["cordoned", true, 4, 8 * GiB],
      ["full", false, 0, 0],
    ]);
  });
});
