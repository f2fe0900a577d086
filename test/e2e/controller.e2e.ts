/**
 * `npm run e2e`: odop controller against the cluster KUBECONFIG names (kind for users:
 * see docs/kubernetes.md). The controller runs here, out of the cluster; its stage pods
 * run in the cluster and need the odop image on the nodes (`docker build -t
 * ghcr.io/odop/odop:<version> .` then `kind load docker-image ...`), or ODOP_IMAGE
 * naming one the nodes can pull. Without a cluster every lane is skipped and says why.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cluster, skipWithReason } from "../support/cluster.ts";
import { eventually } from "../support/engine.ts";
import { freePort } from "../support/ports.ts";

const ROOT = join(import.meta.dirname, "../..");
const probe = await cluster();


if (!probe.ok) {
  skipWithReason("e2e: odop controller on a cluster", "runs OpExecutions as pods on the nodes odop chose", probe.reason);
} else {
  const kubeConfig: KubeConfig = probe.kubeConfig;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const objects = kubeConfig.makeApiClient(CustomObjectsApi);
  const namespace = `odop-e2e-${randomBytes(4).toString("hex")}`;
  const controllers: ChildProcess[] = [];

  const startController = async (leaderElection: boolean): Promise<number> => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(ROOT, "src/cli/odop.ts"), "controller", "--watch-namespaces", namespace, "--namespace", namespace, "--leader-election", String(leaderElection), "--http-port", String(port)], {
      env: { ...process.env, ODOP_PATH: join(ROOT, ".tmp", namespace) },
      stdio: "inherit",
    });
    controllers.push(child);
    return port;
  };

  const task = (name: string, command: string[]) => ({
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name, namespace },
    spec: { trigger: { manual: {} }, backend: "kubernetes", run: { image: "busybox:1.36", command }, requirements: { cpu: { min: 1, max: 1 } } },
  });
  const execution = (name: string, taskName: string) => ({
    apiVersion: "odop.io/v1alpha1",
    kind: "OpExecution",
    metadata: { name, namespace },
    spec: { taskRef: { name: taskName }, executionId: randomUUID(), trigger: { reason: "Manual" } },
  });
  const phaseOf = async (name: string): Promise<string | undefined> => {
    const e = (await objects.getNamespacedCustomObject({ group: "odop.io", version: "v1alpha1", namespace, plural: "opexecutions", name })) as { status?: { phase?: string; reason?: string } };
    return e.status?.phase;
  };

  describe(`e2e: odop controller on ${probe.server}`, () => {
    beforeAll(async () => {
      await core.createNamespace({ body: { metadata: { name: namespace } } });
    });
    afterAll(async () => {
      for (const c of controllers) c.kill("SIGTERM");
      await core.deleteNamespace({ name: namespace });
    });

    it("runs an execution as a pod on the node it chose, owned by the execution, to Succeeded", async () => {
      const port = await startController(false);
      await eventually(async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), "controller ready", 60_000);
      await objects.createNamespacedCustomObject({ group: "odop.io", version: "v1alpha1", namespace, plural: "optasks", body: task("hello", ["sh", "-c", "echo hello"]) });
      await objects.createNamespacedCustomObject({ group: "odop.io", version: "v1alpha1", namespace, plural: "opexecutions", body: execution("hello-1", "hello") });
      await eventually(async () => ((await phaseOf("hello-1")) === "Succeeded" ? true : undefined), "hello-1 Succeeded", 240_000);
      const pods = await core.listNamespacedPod({ namespace, labelSelector: "odop.io/execution=hello-1" });
      const pod = pods.items[0];
      expect(pod?.spec?.nodeName).toBeTruthy();
      expect(pod?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "OpExecution", name: "hello-1", controller: true });
      expect(pod?.metadata?.labels).toMatchObject({ "app.kubernetes.io/managed-by": "odop", "odop.io/task": "hello" });
      expect(pod?.spec?.volumes?.some((v) => v.name !== undefined && v.emptyDir !== undefined)).toBe(true);
    });

    it("fails an execution whose run exits 1, with that reason", async () => {
      await objects.createNamespacedCustomObject({ group: "odop.io", version: "v1alpha1", namespace, plural: "optasks", body: task("fails", ["sh", "-c", "exit 1"]) });
      await objects.createNamespacedCustomObject({ group: "odop.io", version: "v1alpha1", namespace, plural: "opexecutions", body: execution("fails-1", "fails") });
      await eventually(async () => ((await phaseOf("fails-1")) === "Failed" ? true : undefined), "fails-1 Failed", 240_000);
      const e = (await objects.getNamespacedCustomObject({ group: "odop.io", version: "v1alpha1", namespace, plural: "opexecutions", name: "fails-1" })) as { status?: { reason?: string } };
      expect(e.status?.reason).toBe("RunFailed");
    });
  });
}
