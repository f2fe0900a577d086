/**
 * The Kubernetes backend against a scripted API server on 127.0.0.1 (fake-pods.ts): the
 * requests it makes, the pod it creates, and the states it reads from kubelet-like
 * statuses through its informer. Waits are on events, never on time.
 */
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { OpExecution } from "../../../src/api/opexecution.ts";
import { OpTask } from "../../../src/api/optask.ts";
import type { AgentClient } from "../../../src/backends/kubernetes/agent-client.ts";
import { StageNotStartedError } from "../../../src/backends/errors.ts";
import { KubernetesBackend, PodStillTerminatingError, type KubernetesBackendDeps } from "../../../src/backends/kubernetes/backend.ts";
import type { StagePlan, StageRef } from "../../../src/backends/types.ts";
import { FakeApi, until } from "../../store/kubernetes-fake-api.ts";
import { FakePods, kubelet } from "./fake-pods.ts";

const NS = "science";
const POD = "compress-7f3a-1";
const POD_PATH = `/api/v1/namespaces/${NS}/pods/${POD}`;
const log = pino({ level: "silent" });

function task(inputs = true): OpTask {
  return OpTask.parse({
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name: "compress", namespace: NS },
    spec: {
      trigger: { manual: {} },
      backend: "kubernetes",
      run: { image: "ghcr.io/lab/zstd:1.5", command: ["zstd", "-19"] },
      requirements: { cpu: { min: 2, max: 2 }, memory: { min: "1Gi", max: "1Gi" } },
      ...(inputs ? { stages: { configure: { inputs: [{ from: "/scratch/a.h5", to: "inputs/a.h5" }] } } } : {}),
    },
  });
}

function execution(): OpExecution {
  return OpExecution.parse({
    apiVersion: "odop.io/v1alpha1",
    kind: "OpExecution",
    metadata: { name: "compress-7f3a", namespace: NS, uid: "0b5e1c1e-5a4f-4b8e-9d51-1f0c7c3f9a11" },
    spec: { taskRef: { name: "compress" }, executionId: "6f1c2b0e-3d4a-4f5b-8c9d-0e1f2a3b4c5d", trigger: { reason: "Manual" } },
  });
}

function plan(stage: StagePlan["stage"], attempt = 1, inputs = true): StagePlan {
  return { execution: `${NS}/compress-7f3a`, stage, attempt, task: task(inputs), opExecution: execution(), node: "cn042", argv: [], env: {}, cwd: "/", cores: [4, 5], ioBound: false };
}

const ref = (stage: StageRef["stage"], attempt = 1): StageRef => ({ execution: `${NS}/compress-7f3a`, stage, attempt });

type AgentCall = { action: "freeze" | "thaw"; node: string; pod: string; container: string; cpuset?: string };
function recordingAgent(calls: AgentCall[]): AgentClient {
  return {
    freeze: (node, pod, container) => (calls.push({ action: "freeze", node, pod, container }), Promise.resolve()),
    thaw: (node, pod, container, cpuset) => (calls.push({ action: "thaw", node, pod, container, ...(cpuset === undefined ? {} : { cpuset }) }), Promise.resolve()),
  };
}

let api: FakeApi | undefined;
let backends: KubernetesBackend[] = [];

afterEach(async () => {
  for (const b of backends) await b.close();
  await api?.close();
  api = undefined;
  backends = [];
});

async function setup(extra: Partial<KubernetesBackendDeps> = {}) {
  api = await new FakeApi().start();
  const pods = new FakePods(api, NS);
  const calls: AgentCall[] = [];
  const make = (more: Partial<KubernetesBackendDeps> = {}) => {
    const backend = new KubernetesBackend({
      kubeConfig: api!.kubeConfig(),
      log,
      odopImage: "ghcr.io/odop/odop:0.1.0",
      workspace: (namespace) => ({ kind: "pvc", claimName: `${namespace}-scratch` }),
      agent: recordingAgent(calls),
      namespace: NS,
      stopPollMs: 1,
      watchBackoff: { initialMs: 1, maxMs: 10 },
      ...extra,
      ...more,
    });
    backends.push(backend);
    return backend;
  };
  return { api, pods, calls, make, backend: make() };
}

const posts = (a: FakeApi) => a.of("POST", /\/pods$/);
const podGets = (a: FakeApi) => a.of("GET", new RegExp(`${POD_PATH}$`));

describe("KubernetesBackend.start", () => {
  it("creates the attempt's pod once, with odop's field manager, and reads it as running while it waits to start", async () => {
    const { api, backend } = await setup();
    const state = await backend.start(plan("configure"));
    expect(state).toMatchObject({ state: "running", pids: [] });

    const [post, ...more] = posts(api);
    expect(more).toHaveLength(0);
    expect(post?.path).toBe(`/api/v1/namespaces/${NS}/pods`);
    expect(post?.query.get("fieldManager")).toBe("odop");
    const body = post?.body as { metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> }; spec: { nodeName: string; initContainers: { name: string }[]; volumes: unknown[] } };
    expect(body.metadata.name).toBe(POD);
    expect(body.metadata.labels).toMatchObject({ "app.kubernetes.io/managed-by": "odop", "odop.io/execution": "compress-7f3a", "odop.io/attempt": "1" });
    expect(body.metadata.annotations["odop.io/cpuset"]).toBe("4-5");
    expect(JSON.parse(body.metadata.annotations["odop.io/pinning"] ?? "{}")).toMatchObject({ pinned: true });
    expect(body.spec.nodeName).toBe("cn042");
    expect(body.spec.initContainers.map((c) => c.name)).toEqual(["configure", "run"]);
    expect(body.spec.volumes).toContainEqual({ name: "workspace", persistentVolumeClaim: { claimName: `${NS}-scratch` } });
    expect(backend.pinning(ref("configure"))?.pinned).toBe(true);

    // Starting again (the reconciler after a crash) creates nothing.
    expect(await backend.start(plan("configure"))).toMatchObject({ state: "running" });
    expect(posts(api)).toHaveLength(1);
  });

  it("does not create a pod that exists, whether it finds it with a GET or the create says AlreadyExists", async () => {
    const { api, pods, backend } = await setup();
    pods.seed({ metadata: { name: POD, labels: { "app.kubernetes.io/managed-by": "odop" } }, spec: { nodeName: "cn042", initContainers: [{ name: "configure" }, { name: "run" }], containers: [{ name: "done" }] }, status: { phase: "Running", initContainerStatuses: [kubelet.running("configure")] } });
    expect(await backend.start(plan("configure"))).toMatchObject({ state: "running" });
    expect(posts(api)).toHaveLength(0);

    const other = setupSecond(api);
    pods.hideOnce.add(POD);
    expect(await other.start(plan("configure"))).toMatchObject({ state: "running" });
    expect(posts(api)).toHaveLength(1); // answered 409 AlreadyExists; the pod read afterwards
    expect(podGets(api).length).toBeGreaterThanOrEqual(2);
  });

  it("never creates the pod for a later stage: a gone pod is lost", async () => {
    const { api, backend } = await setup();
    expect(await backend.observe(ref("run"))).toEqual({ state: "absent" });
    expect(await backend.start(plan("run"))).toMatchObject({ state: "lost", reason: "PodGone" });
    expect(posts(api)).toHaveLength(0);
  });

  it("asks for the deletion of a live pod of an earlier attempt before creating the next", async () => {
    const { api, pods, backend } = await setup();
    await backend.start(plan("configure"));
    pods.setStatus(POD, { phase: "Unknown", reason: "NodeLost" });
    await backend.start(plan("configure", 2));
    const patch = api.of("PATCH", new RegExp(`${POD_PATH}$`))[0];
    expect((patch?.body as { metadata: { labels: Record<string, string> } }).metadata.labels).toEqual({ "odop.io/stopped": "true" });
    const del = api.of("DELETE", new RegExp(`${POD_PATH}$`))[0];
    expect(del?.body).toEqual({ preconditions: { uid: pods.pods.get(POD)?.metadata.uid } });
    expect(posts(api).map((p) => (p.body as { metadata: { name: string } }).metadata.name)).toEqual([POD, "compress-7f3a-2"]);
    expect(await backend.observe(ref("run", 1))).toMatchObject({ state: "stopped" });
  });
});

function setupSecond(a: FakeApi): KubernetesBackend {
  const b = new KubernetesBackend({ kubeConfig: a.kubeConfig(), log, odopImage: "odop", workspace: { kind: "emptyDir" }, agent: recordingAgent([]), namespace: NS });
  backends.push(b);
  return b;
}

describe("KubernetesBackend.observe", () => {
  it("follows the stages through the informer, a waiting stage reading as running", async () => {
    const { api, pods, backend } = await setup();
    const changes: StageRef[] = [];
    backend.onChange((r) => changes.push(r));
    await backend.ready();
    await backend.start(plan("configure"));
    const gets = podGets(api).length;
    const step = async (status: object, stage: StageRef["stage"]) => {
      const before = changes.length;
      pods.setStatus(POD, status);
      await until(() => changes.length > before, "a change");
      return { state: await backend.observe(ref(stage)), current: changes.at(-1) };
    };

    const configuring = await step({ phase: "Pending", initContainerStatuses: [kubelet.running("configure"), kubelet.waiting("run", "PodInitializing")] }, "configure");
    expect(configuring).toEqual({ state: { state: "running", pids: [], pod: POD }, current: ref("configure") });
    expect(await backend.observe(ref("run"))).toEqual({ state: "running", pids: [], reason: "PodInitializing", pod: POD });

    const waitingRun = await step({ phase: "Pending", initContainerStatuses: [kubelet.terminated("configure", 0), kubelet.waiting("run", "PodInitializing")] }, "run");
    expect(waitingRun).toEqual({ state: { state: "running", pids: [], reason: "PodInitializing", pod: POD }, current: ref("run") });
    expect(await backend.observe(ref("configure"))).toEqual({ state: "exited", exitCode: 0, pod: POD });

    const failed = await step({ phase: "Failed", initContainerStatuses: [kubelet.terminated("configure", 0), kubelet.terminated("run", 3)], containerStatuses: [kubelet.waiting("done", "PodInitializing")] }, "run");
    expect(failed.state).toEqual({ state: "exited", exitCode: 3, pod: POD });
    expect(failed.current).toEqual(ref("run"));
    expect(podGets(api).length).toBe(gets); // all from the informer
  });

  it("reads an attempt it never saw as absent, and one that vanished under it as lost", async () => {
    const { pods, backend } = await setup();
    expect(await backend.observe(ref("configure"))).toEqual({ state: "absent" });
    await backend.start(plan("configure"));
    pods.finishDeletion(POD);
    await until(() => pods.pods.size === 0, "gone");
    await expect.poll(() => backend.observe(ref("configure"))).toMatchObject({ state: "lost", reason: "PodGone" });
  });
});

describe("KubernetesBackend.stop", () => {
  it("marks, deletes with a uid precondition, waits until the pod is gone, and reads stopped afterwards", async () => {
    const { api, pods, backend, make } = await setup();
    await backend.start(plan("run", 1, false));
    const uid = pods.pods.get(POD)?.metadata.uid;
    pods.setStatus(POD, { phase: "Pending", initContainerStatuses: [kubelet.running("run")] });
    pods.deleteAfterGets = Infinity;

    // Another controller (after a restart) sees the terminating pod as stopped.
    const restarted = make();
    const stopping = backend.stop(ref("run"));
    await until(() => pods.pods.get(POD)?.metadata.deletionTimestamp !== undefined, "deletion asked");
    expect(await restarted.observe(ref("run"))).toMatchObject({ state: "stopped" });
    pods.finishDeletion(POD); // the kubelet is done
    await stopping;

    expect(pods.pods.has(POD)).toBe(false);
    const [patch] = api.of("PATCH", new RegExp(`${POD_PATH}$`));
    expect(patch?.contentType).toBe("application/merge-patch+json");
    expect(patch?.query.get("fieldManager")).toBe("odop");
    const [del, ...moreDeletes] = api.of("DELETE", new RegExp(`${POD_PATH}$`));
    expect(moreDeletes).toHaveLength(0);
    expect(del?.body).toEqual({ preconditions: { uid } });
    expect(del?.query.get("gracePeriodSeconds")).toBe("10");
    expect(del?.query.get("propagationPolicy")).toBe("Background");
    expect(await backend.observe(ref("run"))).toEqual({ state: "stopped" });
    expect(await backend.start(plan("run", 1, false))).toEqual({ state: "stopped" });
    expect(posts(api)).toHaveLength(1);
    await backend.stop(ref("run")); // gone: no error
  });

  it("deletes the pod of an execution that succeeded, keeps a failed one, and keeps both under the keep policy", async () => {
    const { api, pods, backend, make } = await setup();
    await backend.start(plan("run", 1, false));
    pods.setStatus(POD, { phase: "Failed" });
    await backend.cleanup(ref("run"), false);
    expect(api.of("DELETE", new RegExp(`${POD_PATH}$`))).toHaveLength(0);
    await make({ cleanupPolicy: "keep" }).cleanup(ref("run"), true);
    expect(api.of("DELETE", new RegExp(`${POD_PATH}$`))).toHaveLength(0);
    pods.setStatus(POD, { phase: "Succeeded" });
    await backend.cleanup(ref("run"), true);
    const deletes = api.of("DELETE", new RegExp(`${POD_PATH}$`));
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.query.get("gracePeriodSeconds")).toBe("0");
  });

  it("gives up waiting, naming the pod and its node, when the pod does not go", async () => {
    const { pods, backend } = await setup({ stopTimeoutMs: 0 });
    await backend.start(plan("configure"));
    pods.deleteAfterGets = Infinity;
    const error = await backend.stop(ref("configure")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PodStillTerminatingError);
    expect((error as Error).message).toMatch(/pod science\/compress-7f3a-1 on node cn042 is still there/);
  });
});

describe("KubernetesBackend.pause and resume", () => {
  it("freezes the running container through the agent, records it, and thaws it onto new cores", async () => {
    const { pods, calls, backend } = await setup();
    await backend.ready();
    await backend.start(plan("run", 1, false));
    const uid = pods.pods.get(POD)?.metadata.uid ?? "";

    pods.setStatus(POD, { phase: "Pending", initContainerStatuses: [kubelet.waiting("run", "ContainerCreating")] });
    await expect.poll(() => backend.observe(ref("run"))).toMatchObject({ reason: "ContainerCreating" });
    await expect(backend.pause(ref("run"))).rejects.toBeInstanceOf(StageNotStartedError);
    expect(calls).toHaveLength(0);

    pods.setStatus(POD, { phase: "Pending", initContainerStatuses: [kubelet.running("run")] });
    await expect.poll(() => backend.observe(ref("run"))).toEqual({ state: "running", pids: [], pod: POD });
    await backend.pause(ref("run"));
    expect(calls).toEqual([{ action: "freeze", node: "cn042", pod: uid, container: "run" }]);
    expect(pods.pods.get(POD)?.metadata.annotations?.["odop.io/paused"]).toBe("run");
    await expect.poll(() => backend.observe(ref("run"))).toEqual({ state: "paused", pids: [], pod: POD });

    await backend.resume(ref("run"), [6, 7]);
    expect(calls.at(-1)).toEqual({ action: "thaw", node: "cn042", pod: uid, container: "run", cpuset: "6-7" });
    expect(pods.pods.get(POD)?.metadata.annotations?.["odop.io/paused"]).toBeUndefined();
    expect(pods.pods.get(POD)?.metadata.annotations?.["odop.io/cpuset"]).toBe("6-7");
    await expect.poll(() => backend.observe(ref("run"))).toEqual({ state: "running", pids: [], pod: POD });
  });
});
