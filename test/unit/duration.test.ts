import { describe, expect, it } from "vitest";
import { Duration, formatDuration, parseDuration } from "../../src/api/duration.ts";

describe("parseDuration", () => {
  it.each([
    ["90s", 90_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["250ms", 250],
    ["1.5h", 5_400_000],
    ["2h0m1s", 7_201_000],
    ["1500us", 1.5],
    ["0s", 0],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "5", "1d", "m5", "5 m", "-5s", "1h 30m", "forever", "PT5M"])("refuses %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe("formatDuration", () => {
  it.each([
    [5_400_000, "1h30m"],
    [90_000, "1m30s"],
    [3_600_000, "1h"],
    [0, "0ms"],
    [1000, "1s"],
    [250, "250ms"],
  ])("%d ms is %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe("Duration schema", () => {
  it("refuses zero with a message that shows the syntax", () => {
    const r = Duration.safeParse("0s");
    expect(r.error?.issues[0]?.message).toBe('"0s" is not a positive duration; write e.g. "30s", "5m", "1h30m" (units: ms, s, m, h)');
  });
});
