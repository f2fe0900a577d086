import { describe, expect, it } from "vitest";
import { pickCores, removeCores } from "../../src/scheduler/pick-cores.ts";

describe("pickCores", () => {
  it.each([
    // free, n, want
    [[0, 1, 2, 3], 2, [0, 1]],
    [[0, 1, 3, 4, 5, 6], 3, [3, 4, 5]],
    [[0, 1, 2, 3, 8, 9], 2, [8, 9]], // the smallest run that holds them keeps 0..3 whole
    [[0, 1, 4, 5, 6], 2, [0, 1]], // an exact run
    [[0, 2, 4, 6], 2, [0, 2]], // no run long enough: the lowest ids
    [[5, 6, 7], 3, [5, 6, 7]],
    [[5, 6, 7], 0, []],
  ])("from %j take %d: %j", (free, n, want) => {
    expect(pickCores(free, n)).toEqual(want);
  });
});

describe("removeCores", () => {
  it.each([
    // free, from, to, taken, want (the array after), want end
    [[0, 1, 2, 3], 0, 4, [1, 3], [0, 2, 2, 3], 2],
    [[0, 1, 2], 0, 3, [], [0, 1, 2], 3],
    [[4, 5], 0, 2, [0, 9], [4, 5], 2],
    [[9, 0, 1, 2, 9], 1, 4, [0], [9, 1, 2, 2, 9], 3], // a segment of a shared array
  ])("%j [%d, %d) without %j is %j, ending at %d", (free, from, to, taken, want, end) => {
    const ids = [...free];
    expect(removeCores(ids, from, to, taken)).toBe(end);
    expect(ids).toEqual(want);
  });
});

describe("pickCores on a segment", () => {
  it("looks only inside [from, to)", () => {
    expect(pickCores([0, 1, 5, 6, 7, 20, 21], 2, 2, 5)).toEqual([5, 6]);
  });
});
