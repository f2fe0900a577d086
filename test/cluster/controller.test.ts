/**
 * `odop controller` against the test control plane, as deploy/ installs it: its own
 * ServiceAccount and RBAC (a TokenRequest token), leader election on, stage pods in a
 * namespace that enforces Pod Security `restricted`, on kwok nodes whose pods behave as
 * their image tags say (test/support/k8s/kwok-stages.ts). A missing permission or a
 * field the server refuses shows up as an execution that never gets where it should.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cluster, unavailable } from "../support/cluster.ts";
import { eventually, ODOP_CLI } from "../support/engine.ts";
import { type ControllerProcess, type DeployedController, type ExecutionView, deployedController, deleteKwokNodes, healthStatus, kubectl, kwokNodes, RESTRICTED, SUITE_LABEL, suiteId, TEST_ODOP_IMAGE, workNamespace } from "../support/k8s/fixtures.ts";

const probe = cluster();
const GROUP = { group: "odop.io", version: "v1alpha1" } as const;


if (!probe.ok) {
  unavailable("odop controller on the test control plane", "runs OpExecutions as pods on kwok nodes", probe.reason);
} else {
  const { kubeConfig } = probe;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const objects = kubeConfig.makeApiClient(CustomObjectsApi);
  const suite = suiteId("ctl");
  const namespace = `${suite}-work`;
  let deployed: DeployedController;
  let controller: ControllerProcess;
  let nodes: string[];

  const work = workNamespace(kubeConfig, suite, namespace);
  const { createTask, createExecution } = work;
  const phaseIs = (name: string, phases: string[], timeoutMs = 60_000) => work.phaseIs(name, phases, timeoutMs, () => ` (controller log tail:\n${controller.output().slice(-3000)})`);
  const setAction = (name: string, action: string) =>
    objects.patchNamespacedCustomObject({ ...GROUP, namespace, plural: "opexecutions", name, body: { spec: { action } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
  const podsOf = async (name: string): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace, labelSelector: `odop.io/execution=${name}` })).items;

  describe(`odop controller on ${probe.server} (kubernetes ${probe.versions["kubernetes"] ?? "?"})`, () => {
    beforeAll(async () => {
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { "app.kubernetes.io/part-of": "odop-tests", ...RESTRICTED } } } });
      nodes = await kwokNodes(kubeConfig, suite, 2, { cpu: 4, memory: "16Gi" });
      deployed = await deployedController(probe, suite, namespace);
      controller = await deployed.start(`${suite}-controller-0`);
      await eventually(async () => ((await healthStatus(controller.httpPort, "/readyz")) === 200 ? true : undefined), `controller ready (log:\n${controller.output().slice(-3000)})`, 60_000);
    }, 120_000);
    afterAll(async () => {
      await deployed?.cleanup();
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
      await deleteKwokNodes(kubeConfig, suite).catch(() => undefined);
    }, 60_000);

    it("runs an execution as a pod on a kwok node it chose, with its volumes, resources, labels and owner, to Succeeded", { timeout: 90_000 }, async () => {
      await createTask("hello", { image: "busybox:1.36", command: ["sh", "-c", "echo hello"] }, {
        stages: { configure: { inputs: [{ from: "https://data.example.org/in.nc", to: "in.nc" }] }, publish: { outputs: [{ from: "outputs/", to: "s3://results/hello/" }] } },
      });
      await createExecution("hello-1", "hello");
      // The pod exists while the execution runs (a succeeded pod is deleted afterwards).
      const pod = await eventually(async () => (await podsOf("hello-1"))[0], "the pod of hello-1");
      const done = await phaseIs("hello-1", ["Succeeded", "Failed"]);
      expect(done.status?.phase, JSON.stringify(done.status)).toBe("Succeeded");
      expect(nodes).toContain(done.status?.node);
      expect(pod.spec?.nodeName).toBe(done.status?.node);
      expect(pod.metadata?.name).toBe("hello-1-1");
      expect(pod.metadata?.labels).toMatchObject({ "app.kubernetes.io/managed-by": "odop", "odop.io/task": "hello", "odop.io/execution": "hello-1", "odop.io/attempt": "1" });
      expect(pod.metadata?.ownerReferences).toEqual([{ apiVersion: "odop.io/v1alpha1", kind: "OpExecution", name: "hello-1", uid: done.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(["configure", "run"]);
      expect(pod.spec?.containers.map((c) => c.name)).toEqual(["publish"]);
      const run = pod.spec?.initContainers?.[1];
      expect(run?.image).toBe("busybox:1.36");
      expect(run?.resources).toEqual({ requests: { cpu: "1", memory: "64Mi" }, limits: { cpu: "1", memory: "64Mi" } });
      expect(pod.spec?.initContainers?.[0]?.image).toBe(TEST_ODOP_IMAGE);
      expect(pod.spec?.volumes?.map((v) => v.name).sort()).toEqual(["odop-stage", "odop-tmp", "workspace"]);
      expect(pod.spec?.volumes?.find((v) => v.name === "workspace")?.emptyDir).toBeDefined();
      expect(pod.spec?.automountServiceAccountToken).toBe(false);
      // The succeeded attempt's pod is deleted (cleanup policy delete-on-success).
      await eventually(async () => ((await podsOf("hello-1")).length === 0 ? true : undefined), "hello-1's pod deleted");
    });

    it("places by target.nodeSelector: only on the node that carries the label", { timeout: 90_000 }, async () => {
      const simNode = nodes[1] ?? "";
      await core.patchNode({ name: simNode, body: { metadata: { labels: { "odop.test/role": "simulation" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      await createTask("near", { image: "odop.test/run:exit-0" }, { target: { nodeSelector: { [SUITE_LABEL]: suite, "odop.test/role": "simulation" } } });
      for (const i of [1, 2, 3]) await createExecution(`near-${i}`, "near");
      for (const i of [1, 2, 3]) expect((await phaseIs(`near-${i}`, ["Succeeded", "Failed"])).status?.node).toBe(simNode);
    });

    it("fails an execution whose run exits 3, with RunFailed and the exit code", { timeout: 90_000 }, async () => {
      await createTask("exit3", { image: "odop.test/run:exit-3" });
      await createExecution("exit3-1", "exit3");
      const done = await phaseIs("exit3-1", ["Succeeded", "Failed"]);
      expect(done.status?.phase).toBe("Failed");
      expect(done.status?.reason).toBe("RunFailed");
      expect(done.status?.message).toContain("exited with code 3");
      // A failed attempt's pod is kept for its logs and events.
      expect((await podsOf("exit3-1")).map((p) => p.status?.phase)).toEqual(["Failed"]);
    });

    it("fails an OOM-killed run with OutOfMemory, and an image that cannot be pulled at once", { timeout: 90_000 }, async () => {
      await createTask("oom", { image: "odop.test/run:oom" });
      await createTask("nopull", { image: "odop.test/run:pull-error" });
      await createExecution("oom-1", "oom");
      await createExecution("nopull-1", "nopull");
      const oom = await phaseIs("oom-1", ["Succeeded", "Failed"]);
      expect([oom.status?.phase, oom.status?.reason]).toEqual(["Failed", "OutOfMemory"]);
      const nopull = await phaseIs("nopull-1", ["Succeeded", "Failed"]);
      expect([nopull.status?.phase, nopull.status?.reason]).toEqual(["Failed", "ErrImagePull"]);
      expect(nopull.status?.message).toContain("odop.test/run:pull-error");
    });

    it("writes statuses the schema accepts: a kubelet reason with a '/' and a very long message", { timeout: 90_000 }, async () => {
      // The kubelet refuses the pod (reason OutOfnvidia.com/gpu, which the CRD's reason pattern refuses).
      await createTask("gpu", { image: "odop.test/run:rejected-gpu" });
      await createExecution("gpu-1", "gpu");
      const gpu = await phaseIs("gpu-1", ["Succeeded", "Failed"]);
      expect(gpu.status?.phase).toBe("Failed");
      expect(gpu.status?.reason).toMatch(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/);
      expect(gpu.status?.message).toContain("nvidia.com/gpu");
      // A run that fails leaves the kubelet's 4 KiB log tail as its message (FallbackToLogsOnError): with
      // "run exited with code 2: " in front, longer than status.message may be.
      await createTask("chatty", { image: "odop.test/run:exit-2" });
      await createExecution("chatty-1", "chatty");
      const done = await phaseIs("chatty-1", ["Succeeded", "Failed"]);
      expect([done.status?.phase, done.status?.reason]).toEqual(["Failed", "RunFailed"]);
      expect(done.status?.message).toMatch(/^run exited with code 2: run: /);
      expect(done.status?.message?.length).toBeLessThanOrEqual(4096);
      expect(done.status?.message).toMatch(/ … \[\d+ characters cut\] … /);
      expect(done.status?.message).toMatch(/line 79 of the container's log, kept by the kubelet for FallbackToLogsOnError$/);
      for (const c of done.status?.conditions ?? []) expect(c.reason).toMatch(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/);
    });

    it("stops a running execution (spec.action Stop): Cancelled, its pod gone", { timeout: 90_000 }, async () => {
      await createTask("sleeper", { image: "odop.test/run:sleep" });
      await createExecution("sleeper-1", "sleeper");
      await phaseIs("sleeper-1", ["Running"]);
      await eventually(async () => ((await podsOf("sleeper-1"))[0]?.status?.initContainerStatuses?.[0]?.state?.running !== undefined ? true : undefined), "sleeper-1's run container running");
      await setAction("sleeper-1", "Stop");
      const done = await phaseIs("sleeper-1", ["Cancelled", "Failed", "Succeeded"]);
      expect([done.status?.phase, done.status?.reason]).toEqual(["Cancelled", "StoppedByUser"]);
      await eventually(async () => ((await podsOf("sleeper-1")).length === 0 ? true : undefined), "sleeper-1's pod gone");
    });

    it("skips an execution that waits for cores (spec.action Skip): Skipped, no pod made", { timeout: 90_000 }, async () => {
      // 64 cores on nodes of 4: it waits in Pending.
      await createTask("huge", { image: "busybox:1.36" }, { requirements: { cpu: { min: 64, max: 64 } } });
      await createExecution("huge-1", "huge");
      await phaseIs("huge-1", ["Pending"]);
      await setAction("huge-1", "Skip");
      const done = await phaseIs("huge-1", ["Skipped", "Failed", "Succeeded"]);
      expect([done.status?.phase, done.status?.reason]).toEqual(["Skipped", "SkippedByUser"]);
      expect(await podsOf("huge-1")).toEqual([]);
    });

    it("enforces requirements.time: TimeLimit, the pod stopped", { timeout: 90_000 }, async () => {
      await createTask("slow", { image: "odop.test/run:sleep" }, { requirements: { cpu: { min: 1, max: 1 }, time: "3s" } });
      await createExecution("slow-1", "slow");
      const done = await phaseIs("slow-1", ["Failed", "Succeeded", "Cancelled"]);
      expect([done.status?.phase, done.status?.reason]).toEqual(["Failed", "TimeLimit"]);
      await eventually(async () => ((await podsOf("slow-1")).length === 0 ? true : undefined), "slow-1's pod gone");
    });

    it("fails an execution whose pod someone deleted, saying so", { timeout: 90_000 }, async () => {
      await createTask("victim", { image: "odop.test/run:sleep" });
      await createExecution("victim-1", "victim");
      await phaseIs("victim-1", ["Running"]);
      const pod = await eventually(async () => (await podsOf("victim-1"))[0], "victim-1's pod");
      await core.deleteNamespacedPod({ namespace, name: pod.metadata?.name ?? "" });
      const done = await phaseIs("victim-1", ["Failed", "Succeeded", "Cancelled"]);
      expect(done.status?.phase).toBe("Failed");
      expect(["PodGone", "PodDeleted"]).toContain(done.status?.reason);
    });

    it("garbage-collects a deleted OpTask's executions and their pods", { timeout: 120_000 }, async () => {
      await createTask("doomed", { image: "odop.test/run:sleep" });
      await createExecution("doomed-1", "doomed");
      await phaseIs("doomed-1", ["Running"]);
      await eventually(async () => (await podsOf("doomed-1"))[0], "doomed-1's pod");
      await objects.deleteNamespacedCustomObject({ ...GROUP, namespace, plural: "optasks", name: "doomed" });
      await eventually(
        async () => {
          const list = (await objects.listNamespacedCustomObject({ ...GROUP, namespace, plural: "opexecutions" })) as { items: ExecutionView[] };
          return list.items.some((e) => e.metadata.name === "doomed-1") ? undefined : true;
        },
        "doomed-1 garbage-collected",
        60_000,
      );
      await eventually(async () => ((await podsOf("doomed-1")).length === 0 ? true : undefined), "doomed-1's pod garbage-collected", 60_000);
    });

    it("writes an OpNode from a node agent's pushes, shown by kubectl get opnode", { timeout: 60_000 }, async () => {
      const node = nodes[0] ?? "";
      const tokenFile = join(mkdtempSync(join(tmpdir(), "odop-agent-")), "token");
      writeFileSync(tokenFile, deployed.agentToken, { mode: 0o600 });
      const agent = spawn(process.execPath, [ODOP_CLI, "agent", "--controller", `http://127.0.0.1:${controller.ingestPort}`, "--token-file", tokenFile, "--node", node, "--interval", "250ms", "--gpu", "off"], { stdio: "ignore" });
      try {
        const opnode = await eventually(
          async () => {
            const o = (await objects.getClusterCustomObject({ ...GROUP, plural: "opnodes", name: node }).catch(() => undefined)) as { status?: { capacity?: { cores?: number } } } | undefined;
            return o?.status?.capacity?.cores !== undefined ? o : undefined;
          },
          `OpNode ${node} written from the agent's pushes (controller log tail:\n${controller.output().slice(-2000)})`,
          40_000,
        );
        expect(opnode.status?.capacity?.cores).toBeGreaterThan(0);
        const out = await kubectl(probe.kubeconfigPath, ["get", "opnode", node]);
        expect(out).toMatch(/^NAME\s+CORES\s+HARVESTABLE\s+MEMORY\s+RUNNING\s+FRESH\s+HEARTBEAT\s+AGE$/m);
        expect(out).toMatch(new RegExp(`^${node}\\s+\\d+\\s+\\S+\\s+\\S+\\s+\\d+\\s+True\\s+`, "m"));
      } finally {
        agent.kill("SIGTERM");
        await objects.deleteClusterCustomObject({ ...GROUP, plural: "opnodes", name: node }).catch(() => undefined);
      }
    });

    it("shows the right columns in kubectl get, and Events in kubectl describe", { timeout: 60_000 }, async () => {
      await phaseIs("exit3-1", ["Failed"]);
      const get = await kubectl(probe.kubeconfigPath, ["get", "optask,opexec", "-n", namespace, "-o", "wide"]);
      const lines = get.split("\n");
      expect(get).toMatch(/^NAME\s+TRIGGER\s+ACTIVE\s+LAST\s+READY\s+BACKEND\s+RUNS\s+SUCCEEDED\s+FAILED\s+AGE$/m);
      expect(lines.find((l) => l.startsWith("optask.odop.io/exit3 "))).toMatch(/^optask\.odop\.io\/exit3\s+manual\s+0\s+Failed\s+True\s+kubernetes\s+1\s+0\s+1\s+\d+s$/);
      expect(get).toMatch(/^NAME\s+TASK\s+PHASE\s+NODE\s+CORES\s+TRIGGER\s+ACTION\s+REASON\s+ATTEMPTS\s+STARTED\s+AGE$/m);
      expect(lines.find((l) => l.startsWith("opexecution.odop.io/exit3-1 "))).toMatch(new RegExp(`^opexecution\\.odop\\.io/exit3-1\\s+exit3\\s+Failed\\s+${suite}-n\\d\\s+\\d+\\s+Manual\\s+Run\\s+RunFailed\\s+1\\s+\\d+s\\s+\\d+s$`));
      const all = await kubectl(probe.kubeconfigPath, ["get", "odop", "-n", namespace]);
      expect(all).toContain("optask.odop.io/exit3");
      const describe = await kubectl(probe.kubeconfigPath, ["describe", "opexec", "exit3-1", "-n", namespace]);
      expect(describe).toMatch(/Events:/);
      expect(describe).toMatch(/Warning\s+Failed\s+.*exited with code 3/);
      expect(describe).toMatch(/Normal\s+Scheduled\s+.*placed on/);
    });
  });
}
