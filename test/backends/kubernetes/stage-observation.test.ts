/** What the backend reports for one stage: given a pod (kubelet-like JSON) and memory → want state. */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { StageName } from "../../../src/api/opexecution.ts";
import type { PodStageState } from "../../../src/backends/kubernetes/pod-status.ts";
import { currentStage, observeStage, refOfPod, type StageMemory } from "../../../src/backends/kubernetes/stage-observation.ts";
import { kubelet } from "./fake-pods.ts";

function pod(status: object, metadata: { labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string } = {}, containers = ["configure", "run", "done"]): V1Pod {
  return JSON.parse(
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "compress-7f3a-1", namespace: "science", uid: "u1", labels: { "odop.io/execution": "compress-7f3a", "odop.io/attempt": "1", ...metadata.labels }, ...(metadata.annotations === undefined ? {} : { annotations: metadata.annotations }), ...(metadata.deletionTimestamp === undefined ? {} : { deletionTimestamp: metadata.deletionTimestamp, deletionGracePeriodSeconds: 10 }) },
      spec: { nodeName: "cn042", initContainers: containers.filter((c) => c !== "done" && c !== "publish").map((name) => ({ name })), containers: containers.filter((c) => c === "done" || c === "publish").map((name) => ({ name })) },
      status,
    }),
  ) as V1Pod;
}

const { running, waiting, terminated } = kubelet;
const fresh: StageMemory = { seen: false, stopped: false };
const seen: StageMemory = { seen: true, stopped: false };
const stoppedHere: StageMemory = { seen: true, stopped: true };

describe("observeStage", () => {
  it.each<[string, V1Pod | undefined, StageName, StageMemory, PodStageState]>([
    ["no pod, never seen", undefined, "configure", fresh, { state: "absent" }],
    ["no pod, seen before", undefined, "run", seen, { state: "lost", reason: "PodGone", message: "the stage pod is gone" }],
    ["no pod, stopped here", undefined, "run", stoppedHere, { state: "stopped" }],
    ["a pod without statuses yet", pod({ phase: "Pending" }), "configure", fresh, { state: "running", pids: [], reason: "Pending" }],
    ["a stage container being created", pod({ phase: "Pending", initContainerStatuses: [waiting("configure", "ContainerCreating")] }), "configure", fresh, { state: "running", pids: [], reason: "ContainerCreating" }],
    ["the next stage while the one before runs", pod({ phase: "Pending", initContainerStatuses: [running("configure"), waiting("run", "PodInitializing")] }), "run", fresh, { state: "running", pids: [], reason: "PodInitializing" }],
    ["a running stage", pod({ phase: "Pending", initContainerStatuses: [terminated("configure", 0), running("run")] }), "run", fresh, { state: "running", pids: [] }],
    ["a running stage odop froze", pod({ phase: "Pending", initContainerStatuses: [terminated("configure", 0), running("run")] }, { annotations: { "odop.io/paused": "run" } }), "run", fresh, { state: "paused", pids: [] }],
    ["a finished stage with the pause mark left", pod({ phase: "Running", initContainerStatuses: [terminated("configure", 0), terminated("run", 0)], containerStatuses: [running("done")] }, { annotations: { "odop.io/paused": "run" } }), "run", fresh, { state: "exited", exitCode: 0 }],
    ["a stage after a failed one", pod({ phase: "Failed", initContainerStatuses: [terminated("configure", 2), waiting("run", "PodInitializing")] }), "run", fresh, { state: "lost", reason: "PodEnded", message: "pod compress-7f3a-1 ended (Failed) before run ran" }],
    ["a stage the pod does not have", pod({ phase: "Pending" }, {}, ["run", "done"]), "configure", fresh, { state: "lost", reason: "NoSuchStage", message: "pod compress-7f3a-1 has no configure container" }],
    ["an image that cannot be pulled", pod({ phase: "Pending", initContainerStatuses: [waiting("configure", "ImagePullBackOff")] }), "configure", fresh, { state: "lost", reason: "ImagePullBackOff", message: "configure cannot start: ImagePullBackOff" }],
    ["a pod labelled stopped, still running", pod({ phase: "Pending", initContainerStatuses: [running("configure")] }, { labels: { "odop.io/stopped": "true" } }), "configure", fresh, { state: "stopped", reason: "StoppedByOdop", message: "odop stopped pod compress-7f3a-1" }],
    ["a pod labelled stopped, terminating", pod({ phase: "Running", initContainerStatuses: [terminated("configure", 0), running("run")] }, { labels: { "odop.io/stopped": "true" }, deletionTimestamp: "2026-03-01T10:10:00Z" }), "run", fresh, { state: "stopped" }],
    ["a stage that exited before the stop", pod({ phase: "Running", initContainerStatuses: [terminated("configure", 0), running("run")] }, { labels: { "odop.io/stopped": "true" } }), "configure", fresh, { state: "exited", exitCode: 0 }],
    ["a pod deleted by someone else", pod({ phase: "Running", initContainerStatuses: [terminated("configure", 0), running("run")] }, { deletionTimestamp: "2026-03-01T10:10:00Z" }), "run", fresh, { state: "lost", reason: "PodDeleted", message: "pod compress-7f3a-1 PodDeleted" }],
  ])("%s", (_name, given, stage, memory, want) => {
    expect(observeStage(given, stage, memory)).toEqual(want);
  });
});

describe("currentStage and refOfPod", () => {
  it.each<[string, V1Pod, StageName]>([
    ["nothing started", pod({ phase: "Pending" }), "configure"],
    ["configure done", pod({ phase: "Pending", initContainerStatuses: [terminated("configure", 0), running("run")] }), "run"],
    ["run failed", pod({ phase: "Failed", initContainerStatuses: [terminated("configure", 0), terminated("run", 1)] }), "run"],
    ["all done, no publish", pod({ phase: "Succeeded", initContainerStatuses: [terminated("configure", 0), terminated("run", 0)], containerStatuses: [terminated("done", 0)] }), "run"],
    ["publishing", pod({ phase: "Running", initContainerStatuses: [terminated("configure", 0), terminated("run", 0)], containerStatuses: [running("publish")] }, {}, ["configure", "run", "publish"]), "publish"],
  ])("%s", (_name, given, want) => {
    expect(currentStage(given)).toBe(want);
    expect(refOfPod(given)).toEqual({ execution: "science/compress-7f3a", stage: want, attempt: 1 });
  });

  it("ignores pods without odop's labels", () => {
    expect(refOfPod(pod({ phase: "Pending" }, { labels: { "odop.io/attempt": "x" } }))).toBeUndefined();
  });
});
