/**
 * Statuses fitted to the schema before they are written (reasons from kubelets, Slurm and
 * errors; messages with log tails): every fitted status validates, whatever went in.
 */
import { describe, expect, it } from "vitest";
import { asReason, REASON_PATTERN, truncated } from "../../src/api/meta.ts";
import { fitExecutionStatus, OpExecution, STATUS_MESSAGE_MAX } from "../../src/api/opexecution.ts";
import { fitTaskStatus, OpTaskStatus } from "../../src/api/optask.ts";

describe("asReason", () => {
  it.each([
    ["OutOfMemory", "OutOfMemory"],
    ["OutOfnvidia.com/gpu", "OutOfnvidia_com_gpu"],
    ["Node Affinity", "Node_Affinity"],
    ["exit 137", "exit_137"],
    ["137", "Reason_137"],
    ["", "Reason"],
    ["...", "Reason"],
    ["Bad:", "Bad"],
    ["x/", "x"],
  ])("%j → %j", (raw, want) => {
    expect(asReason(raw)).toBe(want);
    expect(asReason(raw)).toMatch(REASON_PATTERN);
  });

  it("cuts to the limit and still matches the pattern", () => {
    const reason = asReason(`A${"b,".repeat(300)}`, 256);
    expect(reason.length).toBeLessThanOrEqual(256);
    expect(reason).toMatch(REASON_PATTERN);
  });
});

describe("truncated", () => {
  it("leaves short text alone", () => {
    expect(truncated("short", 10)).toBe("short");
  });

  it("keeps the start and the end, says how much was cut, and fits", () => {
    const text = `run exited with code 2: ${Array.from({ length: 200 }, (_, i) => `line ${i}`).join("\n")}`;
    const out = truncated(text, 300);
    expect(out.length).toBeLessThanOrEqual(300);
    expect(out.startsWith("run exited with code 2: line 0")).toBe(true);
    expect(out.endsWith("line 199")).toBe(true);
    const cut = Number(/\[(\d+) characters cut\]/.exec(out)?.[1]);
    expect(out.length - ` … [${cut} characters cut] … `.length + cut).toBe(text.length);
  });
});

describe("fitExecutionStatus / fitTaskStatus", () => {
  const now = "2026-12-03T10:00:00Z";
  const long = "x".repeat(40_000);

  it("makes a status with a kubelet reason and huge messages valid", () => {
    const status = fitExecutionStatus({
      phase: "Failed",
      reason: "OutOfnvidia.com/gpu",
      message: long,
      conditions: [{ type: "Complete", status: "True", reason: "OutOfnvidia.com/gpu", message: long, lastTransitionTime: now }],
      stages: [{ name: "run", phase: "Failed", reason: "Out Of/Memory", message: long }],
    });
    expect(status.message?.length).toBe(STATUS_MESSAGE_MAX);
    const execution = OpExecution.safeParse({
      apiVersion: "odop.io/v1alpha1",
      kind: "OpExecution",
      metadata: { name: "x-1", namespace: "default" },
      spec: { taskRef: { name: "x" }, executionId: "6f1c2b0e-3d4a-4f5b-8c9d-0e1f2a3b4c5d", trigger: { reason: "Manual" } },
      status,
    });
    expect(execution.success, JSON.stringify(execution.error?.issues.slice(0, 3))).toBe(true);
  });

  it("makes a task status with a long condition message and trigger summary valid", () => {
    const status = fitTaskStatus({ trigger: long, conditions: [{ type: "Ready", status: "False", reason: "Invalid Spec", message: long, lastTransitionTime: now }] });
    expect(OpTaskStatus.safeParse(status).success).toBe(true);
  });
});
