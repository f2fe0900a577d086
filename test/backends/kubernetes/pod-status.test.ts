/** Stage states from stage pods' statuses, written as kubelets report them. */
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { FATAL_WAITING_REASONS, type PodStageState, stageStates, STAGE_REASONS } from "../../../src/backends/kubernetes/pod-status.ts";

/** A stage pod as the API server returns it (raw JSON: timestamps are strings). */
function pod(json: { phase: string; reason?: string; message?: string; init?: unknown[]; main?: unknown[]; conditions?: unknown[] }, extra: { containers?: string[]; metadata?: object } = {}): V1Pod {
  const containers = extra.containers ?? ["configure", "run", "publish"];
  const raw = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "compress-7f3a-1", namespace: "science", uid: "9d2f", ...extra.metadata },
    spec: {
      nodeName: "cn042",
      restartPolicy: "Never",
      initContainers: containers.filter((c) => c === "configure" || c === "run").map((name) => ({ name, image: "img" })),
      containers: containers.filter((c) => c === "publish" || c === "done").map((name) => ({ name, image: "img" })),
    },
    status: {
      phase: json.phase,
      ...(json.reason === undefined ? {} : { reason: json.reason }),
      ...(json.message === undefined ? {} : { message: json.message }),
      ...(json.conditions === undefined ? {} : { conditions: json.conditions }),
      ...(json.init === undefined ? {} : { initContainerStatuses: json.init }),
      ...(json.main === undefined ? {} : { containerStatuses: json.main }),
      qosClass: "Guaranteed",
      startTime: "2026-03-01T10:00:00Z",
    },
  };
  return JSON.parse(JSON.stringify(raw)) as V1Pod;
}

const T0 = "2026-03-01T10:00:01Z";
const T1 = "2026-03-01T10:05:00Z";
const running = (name: string) => ({ name, state: { running: { startedAt: T0 } }, ready: false, restartCount: 0, image: "img", imageID: "", started: true });
const waiting = (name: string, reason: string, message?: string) => ({
  name,
  state: { waiting: { reason, ...(message === undefined ? {} : { message }) } },
  ready: false,
  restartCount: 0,
  image: "img",
  imageID: "",
});
const terminated = (name: string, exitCode: number, reason: string, extra: object = {}) => ({
  name,
  state: { terminated: { exitCode, reason, startedAt: T0, finishedAt: T1, containerID: "containerd://1", ...extra } },
  ready: false,
  restartCount: 0,
  image: "img",
  imageID: "",
  started: false,
});

type Want = Partial<Record<"configure" | "run" | "publish", PodStageState>>;

describe("stageStates: a pod's status → each stage's state", () => {
  it.each<[string, V1Pod | undefined, Parameters<typeof stageStates>[1], Want]>([
    ["no pod, never created", undefined, {}, { configure: { state: "absent" }, run: { state: "absent" }, publish: { state: "absent" } }],
    [
      "no pod, created by odop",
      undefined,
      { expected: true },
      { run: { state: "lost", reason: STAGE_REASONS.PodGone, message: "the stage pod is gone" } },
    ],
    ["no pod, odop is stopping it", undefined, { stopping: true, expected: true }, { run: { state: "stopped" } }],
    [
      "just created: no statuses yet",
      pod({ phase: "Pending" }),
      {},
      { configure: { state: "absent", reason: "Pending" }, run: { state: "absent", reason: "Pending" }, publish: { state: "absent", reason: "Pending" } },
    ],
    [
      "configure pulling its image",
      pod({ phase: "Pending", init: [waiting("configure", "ContainerCreating"), waiting("run", "PodInitializing")], main: [waiting("publish", "PodInitializing")] }),
      {},
      { configure: { state: "absent", reason: "ContainerCreating" }, run: { state: "absent", reason: "PodInitializing" } },
    ],
    [
      "configure running",
      pod({ phase: "Pending", init: [running("configure"), waiting("run", "PodInitializing")], main: [waiting("publish", "PodInitializing")] }),
      {},
      { configure: { state: "running", pids: [] }, run: { state: "absent", reason: "PodInitializing" } },
    ],
    [
      "run running after configure succeeded",
      pod({ phase: "Pending", init: [terminated("configure", 0, "Completed"), running("run")], main: [waiting("publish", "PodInitializing")] }),
      {},
      { configure: { state: "exited", exitCode: 0 }, run: { state: "running", pids: [] }, publish: { state: "absent", reason: "PodInitializing" } },
    ],
    [
      "all succeeded",
      pod({ phase: "Succeeded", init: [terminated("configure", 0, "Completed"), terminated("run", 0, "Completed")], main: [terminated("publish", 0, "Completed")] }),
      {},
      { configure: { state: "exited", exitCode: 0 }, run: { state: "exited", exitCode: 0 }, publish: { state: "exited", exitCode: 0 } },
    ],
    [
      "run failed with the kubelet's log tail (FallbackToLogsOnError): the message carries it",
      pod({ phase: "Failed", init: [terminated("configure", 0, "Completed"), terminated("run", 2, "Error", { message: "Traceback…\nValueError: bad input\n" })], main: [waiting("publish", "PodInitializing")] }),
      {},
      { run: { state: "exited", exitCode: 2, message: "run: Traceback…\nValueError: bad input" } },
    ],
    [
      "run failed: the pod fails, publish never starts",
      pod({ phase: "Failed", init: [terminated("configure", 0, "Completed"), terminated("run", 3, "Error")], main: [waiting("publish", "PodInitializing")] }),
      {},
      { run: { state: "exited", exitCode: 3 }, publish: { state: "absent", reason: "PodInitializing" } },
    ],
    [
      "configure failed: run never starts",
      pod({ phase: "Failed", init: [terminated("configure", 1, "Error"), waiting("run", "PodInitializing")], main: [waiting("publish", "PodInitializing")] }),
      {},
      { configure: { state: "exited", exitCode: 1 }, run: { state: "absent", reason: "PodInitializing" } },
    ],
    [
      "run OOM-killed",
      pod({ phase: "Failed", init: [terminated("configure", 0, "Completed"), terminated("run", 137, "OOMKilled")], main: [waiting("publish", "PodInitializing")] }),
      {},
      { run: { state: "exited", exitCode: 137, reason: "OutOfMemory", message: "run ran out of memory (OOMKilled)" } },
    ],
    [
      "run's command not found",
      pod({
        phase: "Failed",
        init: [terminated("configure", 0, "Completed"), terminated("run", 128, "StartError", { message: 'exec: "zstd": executable file not found in $PATH' })],
      }),
      {},
      { run: { state: "exited", exitCode: 128, reason: "StartError", message: 'run: exec: "zstd": executable file not found in $PATH' } },
    ],
    [
      "container vanished",
      pod({
        phase: "Failed",
        init: [terminated("configure", 0, "Completed"), terminated("run", 137, "ContainerStatusUnknown", { message: "The container could not be located when the pod was terminated" })],
      }),
      {},
      { run: { state: "lost", reason: "ContainerStatusUnknown", message: "run: The container could not be located when the pod was terminated" } },
    ],
    [
      "evicted while running",
      pod({
        phase: "Failed",
        reason: "Evicted",
        message: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi.",
        init: [terminated("configure", 0, "Completed"), terminated("run", 137, "Error")],
        main: [waiting("publish", "PodInitializing")],
      }),
      {},
      {
        configure: { state: "exited", exitCode: 0 },
        run: { state: "lost", reason: "Evicted", message: "pod compress-7f3a-1 Evicted: The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi." },
        publish: { state: "lost", reason: "Evicted", message: "pod compress-7f3a-1 Evicted: The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi." },
      },
    ],
    [
      "refused by the kubelet at admission",
      pod({ phase: "Failed", reason: "OutOfcpu", message: "Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 62000, capacity: 64000" }),
      {},
      {
        configure: { state: "lost", reason: "OutOfcpu", message: "pod compress-7f3a-1 OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 62000, capacity: 64000" },
        run: { state: "lost", reason: "OutOfcpu", message: expect.stringContaining("Pod was rejected") as string },
      },
    ],
    [
      "node stopped reporting",
      pod({ phase: "Unknown", init: [terminated("configure", 0, "Completed"), running("run")] }),
      {},
      { configure: { state: "exited", exitCode: 0 }, run: { state: "lost", reason: "NodeLost", message: "pod compress-7f3a-1 NodeLost: its node stopped reporting" } },
    ],
    [
      "deleted by the taint manager",
      pod(
        {
          phase: "Running",
          conditions: [{ type: "DisruptionTarget", status: "True", reason: "DeletionByTaintManager", message: "Taint manager: deleting due to NoExecute taint", lastTransitionTime: T1 }],
          init: [terminated("configure", 0, "Completed"), running("run")],
        },
        { metadata: { deletionTimestamp: "2026-03-01T10:06:00Z", deletionGracePeriodSeconds: 30 } },
      ),
      {},
      { configure: { state: "exited", exitCode: 0 }, run: { state: "lost", reason: "DeletionByTaintManager", message: "pod compress-7f3a-1 DeletionByTaintManager: Taint manager: deleting due to NoExecute taint" } },
    ],
    [
      "deleted by someone, no reason given",
      pod({ phase: "Running", init: [terminated("configure", 0, "Completed"), terminated("run", 143, "Error", { finishedAt: "2026-03-01T10:05:31Z" })] }, { metadata: { deletionTimestamp: "2026-03-01T10:06:00Z", deletionGracePeriodSeconds: 30 } }),
      {},
      { run: { state: "lost", reason: "PodDeleted", message: "pod compress-7f3a-1 PodDeleted" } },
    ],
    [
      "deleted by odop's stop",
      pod({ phase: "Running", init: [terminated("configure", 0, "Completed"), terminated("run", 143, "Error", { finishedAt: "2026-03-01T10:05:31Z" })] }, { metadata: { deletionTimestamp: "2026-03-01T10:06:00Z", deletionGracePeriodSeconds: 30 } }),
      { stopping: true },
      { configure: { state: "exited", exitCode: 0 }, run: { state: "stopped" }, publish: { state: "stopped" } },
    ],
    [
      "a stage that failed before the pod was deleted keeps its exit code",
      pod({ phase: "Failed", init: [terminated("configure", 2, "Error"), waiting("run", "PodInitializing")] }, { metadata: { deletionTimestamp: "2026-03-01T10:06:00Z", deletionGracePeriodSeconds: 30 } }),
      {},
      { configure: { state: "exited", exitCode: 2 }, run: { state: "lost", reason: "PodDeleted", message: "pod compress-7f3a-1 PodDeleted" } },
    ],
    [
      "a task without inputs or outputs: configure and publish are absent",
      pod({ phase: "Succeeded", init: [terminated("run", 0, "Completed")], main: [terminated("done", 0, "Completed")] }, { containers: ["run", "done"] }),
      {},
      { configure: { state: "absent" }, run: { state: "exited", exitCode: 0 }, publish: { state: "absent" } },
    ],
  ])("%s", (_, given, options, want) => {
    const got = stageStates(given, options);
    for (const [stage, state] of Object.entries(want)) expect(got[stage as keyof Want], stage).toEqual(state);
  });

  it.each([
    ["ErrImagePull", 'failed to pull and unpack image "ghcr.io/lab/zstd:1.5": failed to resolve reference: not found'],
    ["ImagePullBackOff", 'Back-off pulling image "ghcr.io/lab/zstd:1.5"'],
    ["InvalidImageName", 'Failed to apply default image tag "ghcr.io/lab/ZSTD": couldn\'t parse image name'],
    ["ErrImageNeverPull", 'Container image "zstd" is not present with pull policy of Never'],
    ["CreateContainerConfigError", 'secret "s3-creds" not found'],
    ["CreateContainerConfigError", "container has runAsNonRoot and image will run as root"],
    ["CreateContainerError", "failed to reserve container name"],
  ])("%s ends the stage at once: %s", (reason, message) => {
    const given = pod({ phase: "Pending", init: [terminated("configure", 0, "Completed"), waiting("run", reason, message)], main: [waiting("publish", "PodInitializing")] });
    expect(stageStates(given).run).toEqual({ state: "lost", reason, message: `run cannot start: ${reason}: ${message}` });
    expect(FATAL_WAITING_REASONS.has(reason)).toBe(true);
  });

  it("reads Date timestamps as the client deserialises them", () => {
    const given = pod({ phase: "Failed", init: [terminated("configure", 2, "Error"), waiting("run", "PodInitializing")] });
    given.metadata!.deletionTimestamp = new Date("2026-03-01T10:06:00Z");
    given.metadata!.deletionGracePeriodSeconds = 30;
    const configure = given.status!.initContainerStatuses![0]!.state!.terminated!;
    configure.finishedAt = new Date(T1);
    configure.startedAt = new Date(T0);
    expect(stageStates(given).configure).toEqual({ state: "exited", exitCode: 2 });
    // Finished after the deletion was asked for: killed by it.
    configure.finishedAt = new Date("2026-03-01T10:05:45Z");
    expect(stageStates(given).configure).toMatchObject({ state: "lost", reason: "PodDeleted" });
  });

  it("never leaves a stage waiting on a failed pod", () => {
    // Whatever the containers say, a pod failed from outside ends every unfinished stage.
    for (const reason of ["Evicted", "OutOfcpu", "NodeAffinity", "UnexpectedAdmissionError", "DeadlineExceeded", "Shutdown"]) {
      const states = stageStates(pod({ phase: "Failed", reason, init: [running("configure"), waiting("run", "PodInitializing")] }));
      for (const s of Object.values(states)) expect(s, reason).toMatchObject({ state: "lost", reason });
    }
  });
});
