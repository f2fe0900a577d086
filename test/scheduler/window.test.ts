import { describe, expect, it } from "vitest";
import type { NodeSample } from "../../src/api/sample.ts";
import { DEFAULT_WINDOW_CONFIG, NodeWindow, type WindowConfig } from "../../src/scheduler/window.ts";

const GiB = 1024 ** 3;

/** A sample of node n1 at time t whose core i has main use mains[i]. */
function sample(t: number, mains: readonly number[], available = 16 * GiB, ids?: readonly number[]): NodeSample {
  return {
    version: "v1",
    node: "n1",
    time: t,
    intervalMs: 1000,
    cores: mains.map((main, i) => ({ id: ids?.[i] ?? i, total: main, main, odop: 0 })),
    memory: { totalBytes: 64 * GiB, availableBytes: available, mainBytes: 0, odopBytes: 0 },
    main: { processes: 1, cpu: mains.reduce((a, b) => a + b, 0) },
  };
}

function window(config: Partial<WindowConfig> = {}): NodeWindow {
  return new NodeWindow({ name: "n1", labels: { rack: "a" }, config });
}

/** Feeds one core's main use, one sample a second from t=0; "H" where harvestable after each. */
function trace(mains: readonly number[], config: Partial<WindowConfig>): string {
  const w = window(config);
  return mains
    .map((m, i) => {
      w.add(sample(i * 1000, [m]));
      return w.view(i * 1000).cores[0]?.harvestable === true ? "H" : ".";
    })
    .join("");
}

describe("NodeWindow hysteresis (idle 0.15, busy 0.5, hold 3 s)", () => {
  it.each([
    // name, halfLifeMs, main use each second, want
    ["idle from the start: released once the hold window is full", 0, [0, 0, 0, 0, 0], "...HH"],
    ["noise between the thresholds does not take a released core back", 0, [0, 0, 0, 0, 0.3, 0.45, 0.2, 0.4, 0.1], "...HHHHHH"],
    ["noise between the thresholds breaks a hold not yet complete", 0, [0, 0, 0.3, 0, 0, 0, 0], "......H"],
    ["a busy spike takes the core back at once; a full hold again", 0, [0, 0, 0, 0, 0.9, 0, 0, 0, 0], "...H....H"],
    ["exactly the busy threshold is not above it", 0, [0, 0, 0, 0, 0.5, 0], "...HHH"],
    ["exactly the idle threshold is not below it", 0, [0.15, 0.15, 0.15, 0.15, 0.15], "....."],
    ["always busy", 0, [1, 1, 1, 1, 1], "....."],
    ["smoothed: full use falling to idle starts the hold when the average is below idle", 1000, [1, 0, 0, 0, 0, 0, 0, 0], "......HH"],
    ["smoothed: one noisy sample does not break the hold", 1000, [0, 0, 0.2, 0, 0], "...HH"],
    ["smoothed: a raw spike takes the core back though the average is low", 1000, [0, 0, 0, 0, 0.6, 0, 0, 0, 0, 0], "...H.....H"],
  ])("%s", (_name, halfLifeMs, mains, want) => {
    expect(trace(mains, { halfLifeMs })).toBe(want);
  });

  it.each([
    // odop run's defaults: idle 0.5, busy 0.8, hold 1 s, half-life 1 s, reclaim on the average
    ["a burst of the application does not take the core back", [0, 0, 0, 1, 0, 0, 1, 0], ".HHHHHHH"],
    ["bursty use averaging below idle is harvested", [0.6, 0, 0.6, 0, 0.6, 0, 0.6, 0], "..HHHHHH"],
    ["sustained use takes the core back once the average passes busy", [0, 0, 0, 1, 1, 1, 1, 1], ".HHHH..."],
  ])("reclaim on sustained use: %s", (_name, mains, want) => {
    expect(trace(mains, { idleThreshold: 0.5, busyThreshold: 0.8, holdMs: 1000, halfLifeMs: 1000, reclaimOn: "smoothed" })).toBe(want);
  });

  it("refuses an unknown reclaimOn", () => {
    expect(() => window({ reclaimOn: "sometimes" as "raw" })).toThrow(/reclaimOn/);
  });

  it("reports the smoothed main use", () => {
    const w = window({ halfLifeMs: 1000 });
    w.add(sample(0, [1]));
    w.add(sample(1000, [0]));
    w.add(sample(3000, [0])); // two half-lives later
    expect(w.view(3000).cores[0]?.mainUsage).toBeCloseTo(0.125, 10);
  });
});

describe("NodeWindow staleness", () => {
  const fed = (): NodeWindow => {
    const w = window({ halfLifeMs: 0 });
    for (let t = 0; t <= 3000; t += 1000) w.add(sample(t, [0, 0.9]));
    return w;
  };

  it.each([
    // now, want stale, want harvestable ids
    [3000, false, [0]],
    [13_000, false, [0]],
    [13_001, true, []],
    [100_000, true, []],
  ])("at now=%d: stale %s, harvestable %j", (now, stale, harvestable) => {
    const v = fed().view(now);
    expect(v.stale).toBe(stale);
    expect(v.cores.filter((c) => c.harvestable).map((c) => c.id)).toEqual(harvestable);
    expect(v.cores.map((c) => c.id)).toEqual([0, 1]);
  });

  it("a window without samples is stale and shows nothing", () => {
    expect(window().view(0)).toEqual({ name: "n1", cores: [], memoryAvailableBytes: 0, labels: { rack: "a" }, stale: true });
  });

  it("after a silence longer than staleAfterMs every core starts its hold again", () => {
    const w = fed();
    w.add(sample(14_000, [0, 0]));
    expect(w.view(14_000).cores.map((c) => c.harvestable)).toEqual([false, false]);
    for (const t of [15_000, 16_000]) w.add(sample(t, [0, 0]));
    expect(w.view(16_000).cores.map((c) => c.harvestable)).toEqual([false, false]);
    w.add(sample(17_000, [0, 0]));
    expect(w.view(17_000).cores.map((c) => c.harvestable)).toEqual([true, true]);
  });
});

describe("NodeWindow samples", () => {
  it("keeps at most ringSize samples, oldest first", () => {
    const w = window({ ringSize: 3 });
    for (let t = 0; t < 5000; t += 1000) expect(w.add(sample(t, [0.25, 0.5]))).toBe(true);
    const kept = w.samples();
    expect(kept.map((s) => s.time)).toEqual([2000, 3000, 4000]);
    expect(kept[2]).toEqual(sample(4000, [0.25, 0.5]));
  });

  it.each([
    ["an older sample", 1000],
    ["a duplicate time", 4000],
  ])("ignores %s and changes nothing", (_name, t) => {
    const w = window({ halfLifeMs: 0 });
    for (let s = 0; s <= 4000; s += 1000) w.add(sample(s, [0]));
    expect(w.add(sample(t, [1]))).toBe(false);
    expect(w.view(4000).cores[0]).toEqual({ id: 0, mainUsage: 0, harvestable: true });
    expect(w.samples().map((s) => s.time)).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(w.latestTime).toBe(4000);
  });

  it("refuses a sample of another node", () => {
    expect(() => window().add({ ...sample(0, [0]), node: "n2" })).toThrow(/n2/);
  });
});

describe("NodeWindow cores and memory", () => {
  it.each([
    // available, margin, want
    [16 * GiB, GiB, 15 * GiB],
    [GiB / 2, GiB, 0],
    [GiB, 0, GiB],
  ])("available %d less margin %d is %d", (available, memoryMarginBytes, want) => {
    const w = window({ memoryMarginBytes });
    w.add(sample(0, [0], available));
    expect(w.view(0).memoryAvailableBytes).toBe(want);
  });

  it("lists cores by ascending id without duplicates, whatever the sample's order", () => {
    const w = window();
    w.add(sample(0, [0.1, 0.2, 0.3, 0.4], GiB, [3, 1, 3, 0]));
    expect(w.view(0).cores.map((c) => [c.id, c.mainUsage])).toEqual([
      [0, 0.4],
      [1, 0.2],
      [3, 0.1],
    ]);
  });

  it("keeps each core's state when the set of cores changes; a new core starts busy", () => {
    const w = window({ halfLifeMs: 0 });
    for (let t = 0; t <= 3000; t += 1000) w.add(sample(t, [0, 0, 0]));
    w.add(sample(4000, [0, 0, 0], GiB, [0, 2, 5])); // core 1 went offline, core 5 came
    expect(w.view(4000).cores.map((c) => [c.id, c.harvestable])).toEqual([
      [0, true],
      [2, true],
      [5, false],
    ]);
  });

  it("uses the defaults for what the config leaves out, and refuses nonsense", () => {
    expect(window({ holdMs: 1 }).config).toEqual({ ...DEFAULT_WINDOW_CONFIG, holdMs: 1 });
    expect(() => window({ idleThreshold: 0.6 })).toThrow(RangeError);
    expect(() => window({ ringSize: 0 })).toThrow(RangeError);
  });

  it("labels can change", () => {
    const w = window();
    w.add(sample(0, [0]));
    w.setLabels({ rack: "b" });
    expect(w.view(0).labels).toEqual({ rack: "b" });
  });
});
