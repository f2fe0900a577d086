/** The shared wire mappings, in tables: job states (v0.0.38's single names included), exit codes, node states, no-value numbers. */
import { describe, expect, it } from "vitest";
import { exitCodeOfVerbose, exitCodeOfWaitStatus, JobStateNames, nodeStates, numberOf } from "../../../../src/backends/slurm/rest/wire.ts";

describe("JobStateNames", () => {
  it.each([
    [["RUNNING"], { state: "RUNNING", flags: [] }],
    [["COMPLETED", "COMPLETING"], { state: "COMPLETED", flags: ["COMPLETING"] }],
    [["PENDING", "REQUEUED", "REQUEUE_HOLD"], { state: "PENDING", flags: ["REQUEUED", "REQUEUE_HOLD"] }],
    // v0.0.38 names the flag instead of the base state
    [["COMPLETING"], { state: "RUNNING", flags: ["COMPLETING"] }],
    [["STOPPED"], { state: "RUNNING", flags: ["STOPPED"] }],
    [["CONFIGURING"], { state: "RUNNING", flags: ["CONFIGURING"] }],
    [["REQUEUE_HOLD"], { state: "PENDING", flags: ["REQUEUE_HOLD"] }],
    [["SPECIAL_EXIT"], { state: "PENDING", flags: ["SPECIAL_EXIT"] }],
    [["REVOKED"], { state: "CANCELLED", flags: ["REVOKED"] }],
  ])("%j → %j", (names, want) => {
    expect(JobStateNames.parse(names)).toEqual(want);
  });

  it("refuses an unknown or empty state, naming it", () => {
    expect(JobStateNames.safeParse(["HIBERNATING"]).error?.issues[0]).toMatchObject({ path: [0], message: 'unknown job state "HIBERNATING"' });
    expect(JobStateNames.safeParse([]).success).toBe(false);
  });
});

describe("exit codes", () => {
  it.each([
    [0, { returnCode: 0 }],
    [256, { returnCode: 1 }],
    [2 << 8, { returnCode: 2 }],
    [9, { returnCode: 0, signal: 9 }],
    [15 | 0x80, { returnCode: 0, signal: 15 }],
    [null, undefined],
  ])("v0.0.38 wait status %j → %j", (status, want) => {
    expect(exitCodeOfWaitStatus(status)).toEqual(want);
  });

  const unset = { set: false, infinite: false, number: 0 };
  it.each([
    [{ status: ["SUCCESS"], return_code: { set: true, infinite: false, number: 0 } }, { returnCode: 0 }],
    [{ status: ["ERROR"], return_code: { set: true, infinite: false, number: 3 } }, { returnCode: 3 }],
    [{ status: ["SIGNALED"], return_code: unset, signal: { id: { set: true, infinite: false, number: 9 }, name: "KILL" } }, { returnCode: 0, signal: 9 }],
    [{ status: ["PENDING"], return_code: unset }, undefined],
    [{ status: ["INVALID"] }, undefined],
  ])("data_parser %j → %j", (code, want) => {
    expect(exitCodeOfVerbose({ ...code, status: code.status })).toEqual(want);
  });
});

describe("nodeStates and numberOf", () => {
  it("puts the base state first, upper case", () => {
    expect(nodeStates(["mixed"])).toEqual(["MIXED"]);
    expect(nodeStates(["DRAIN", "IDLE"])).toEqual(["IDLE", "DRAIN"]);
    expect(nodeStates(["DOWN", "NOT_RESPONDING"])).toEqual(["DOWN", "NOT_RESPONDING"]);
  });

  it("reads plain numbers and {set, infinite, number}", () => {
    expect(numberOf(5)).toBe(5);
    expect(numberOf({ set: true, infinite: false, number: 7 })).toBe(7);
    expect(numberOf({ set: false, infinite: false, number: 0 })).toBeUndefined();
    expect(numberOf({ set: true, infinite: true, number: 0 })).toBeUndefined();
    expect(numberOf(undefined)).toBeUndefined();
  });
});
