/** AgentNodeSource without HTTP: clock offsets, the fallback source, forgetting, and the reply. */
import { describe, expect, it } from "vitest";
import type { OpNodeStatus } from "../../../src/api/opnode.ts";
import { FakeClock } from "../../../src/controller/clock.ts";
import { rfc3339 } from "../../../src/controller/conditions.ts";
import { AgentNodeSource, RAISE_AFTER } from "../../../src/controller/ingest/agent-nodes.ts";
import type { NodeSource } from "../../../src/controller/node-source.ts";
import type { NodeView } from "../../../src/scheduler/types.ts";
import { pushOf, sampleOf } from "./pushes.ts";

function fallbackOf(views: NodeView[], opNodes: { name: string; status: OpNodeStatus }[] = []): NodeSource & { refreshed: number } {
  return {
    refreshed: 0,
    refresh() {
      this.refreshed++;
      return Promise.resolve();
    },
    views: () => views,
    latest: () => undefined,
    opNodes: () => opNodes,
  };
}

const viewOf = (name: string, stale = false, labels: Record<string, string> = {}): NodeView => ({
  name,
  cores: [{ id: 0, mainUsage: 0, harvestable: !stale }],
  memoryAvailableBytes: 2 ** 30,
  labels,
  stale,
});

describe("AgentNodeSource", () => {
  it("holds the clock offset through network jitter, follows a step forward at once and a step back after a few pushes", () => {
    const clock = new FakeClock();
    const source = new AgentNodeSource({ watchFor: () => [] });
    let seq = 0;
    /** One push of one sample taken at `agentNow` on the agent, sent at once, received `delay` later: the offset applied (undefined: dropped). */
    const push = (agentNow: number, delay: number) => {
      clock.advance(1000);
      const { accepted } = source.take(pushOf({ seq, sentAt: agentNow, samples: [sampleOf("n1", agentNow, [0])] }), clock.now() + delay);
      seq++;
      return accepted === 1 ? source.window("n1")!.latestTime! - agentNow : undefined;
    };
    const skew = 5000; // the agent is 5 s behind
    expect(push(clock.now() + 1000 - skew, 20)).toBe(skew + 20);
    // Jitter within the tolerance (1 s), and one slow push: the offset stays.
    expect([80, 400, 1500, 30].map((delay) => push(clock.now() + 1000 - skew, delay))).toEqual([skew + 20, skew + 20, skew + 20, skew + 20]);
    // The agent's clock steps 10 s forward: followed at once.
    expect(push(clock.now() + 1000 - skew + 10_000, 20)).toBe(skew - 10_000 + 20);
    // And 10 s back again: taken once RAISE_AFTER pushes in a row measure it. Until then
    // their samples land 10 s before the newest one taken, and are dropped.
    const back = Array.from({ length: RAISE_AFTER }, () => push(clock.now() + 1000 - skew, 20));
    expect(back).toEqual([...Array.from({ length: RAISE_AFTER - 1 }, () => undefined), skew + 20]);
  });

  it("uses the fallback for nodes no agent reports, and its labels (and drained state) for those that do", () => {
    const clock = new FakeClock();
    const drained = viewOf("a1", true, { "slurm.odop.io/partition-batch": "true" });
    const fallback = fallbackOf([viewOf("a1", false, { rack: "r1" }), viewOf("f1")]);
    const source = new AgentNodeSource({ watchFor: () => [], fallback });
    source.take(pushOf({ node: "a1", seq: 0, sentAt: clock.now(), samples: [sampleOf("a1", clock.now(), [0, 0.9])] }), clock.now());
    let views = source.views(clock.now());
    expect(views.map((v) => [v.name, v.cores.length, v.labels])).toEqual([
      ["a1", 2, { rack: "r1" }],
      ["f1", 1, {}],
    ]);
    // The fallback calls a1 stale (drained): so is the agent's view.
    fallback.views = () => [drained];
    views = source.views(clock.now());
    expect(views).toHaveLength(1);
    expect(views[0]).toMatchObject({ name: "a1", stale: true, labels: drained.labels });
  });

  it("publishes the fallback's OpNodes for the other nodes and keeps its Slurm details for agent nodes", async () => {
    const clock = new FakeClock();
    const slurm = { state: ["MIXED"], partitions: ["batch"], allocatedCores: 1 };
    const fallback = fallbackOf([viewOf("a1"), viewOf("f1")], [
      { name: "a1", status: { source: "slurm", slurm } },
      { name: "f1", status: { source: "slurm", slurm } },
    ]);
    const source = new AgentNodeSource({ watchFor: () => [], fallback, now: () => clock.now() });
    source.take(pushOf({ node: "a1", seq: 0, sentAt: clock.now(), samples: [sampleOf("a1", clock.now(), [0])] }), clock.now());
    const nodes = source.opNodes(rfc3339(clock.now()));
    expect(nodes.map((n) => [n.name, n.status.source, n.status.slurm])).toEqual([
      ["a1", "agent", slurm],
      ["f1", "slurm", slurm],
    ]);
    await source.refresh();
    expect(fallback.refreshed).toBe(1);
  });

  it("forgets a node silent for forgetAfterMs at refresh()", async () => {
    const clock = new FakeClock();
    const source = new AgentNodeSource({ watchFor: () => [], forgetAfterMs: 60_000, now: () => clock.now() });
    source.take(pushOf({ seq: 0, sentAt: clock.now(), samples: [sampleOf("n1", clock.now(), [0])] }), clock.now());
    clock.advance(60_000);
    await source.refresh();
    expect(source.size).toBe(1);
    clock.advance(1);
    await source.refresh();
    expect(source.size).toBe(0);
    expect(source.views(clock.now())).toEqual([]);
  });

  it("answers the node's watch list (at most 256) and refuses a sample of another node", () => {
    const watch = Array.from({ length: 300 }, (_, i) => ({ folder: `/d/${i}`, pattern: "*" }));
    const source = new AgentNodeSource({ watchFor: (node) => (node === "n1" ? watch : []) });
    const reply = source.take(pushOf({ seq: 0, sentAt: 5, samples: [] }), 7);
    expect(reply).toEqual({ accepted: 0, nextSeq: 0, watch: watch.slice(0, 256), serverTime: 7 });
    expect(() => source.take(pushOf({ seq: 0, sentAt: 5, samples: [sampleOf("n2", 5, [0])] }), 7)).toThrow(/sample of "n2"/);
  });

  it("keeps no more than AGENT_RING_SIZE samples a node by default", () => {
    const source = new AgentNodeSource({ watchFor: () => [] });
    const samples = Array.from({ length: 30 }, (_, i) => sampleOf("n1", 1000 * (i + 1), [0]));
    expect(source.take(pushOf({ seq: 0, sentAt: 30_000, samples }), 30_000).accepted).toBe(30);
    expect(source.window("n1")?.samples()).toHaveLength(10);
  });
});
