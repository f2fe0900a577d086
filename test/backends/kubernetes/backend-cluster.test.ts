/**
 * The Kubernetes backend on a real cluster: whatever KUBECONFIG (or ~/.kube/config)
 * names, e.g. `kind create cluster`. It creates the pod of a tiny task (busybox, as user
 * 65534 through a pod template) on a Ready node, and waits until the pod Succeeded and
 * the run stage exited 0. Needs the odop CRDs (applied from crds/ when missing): the pod
 * is owned by a real OpExecution, so the garbage collector keeps it. Each run uses a fresh
 * namespace, deleted afterwards. Without a reachable cluster the lane is skipped, with the
 * reason in its name and on stderr, so that a green run never hides the skip.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { OpExecution } from "../../../src/api/opexecution.ts";
import { OpTask } from "../../../src/api/optask.ts";
import { KubernetesBackend } from "../../../src/backends/kubernetes/backend.ts";
import type { StageRef } from "../../../src/backends/types.ts";
import { cluster, skipWithReason } from "../../support/cluster.ts";

const probe = await cluster();

if (probe.ok) {
  describe(`kubernetes backend on a cluster (${probe.kubeConfig.getCurrentCluster()?.server ?? "?"}, node ${probe.node})`, () => {
    it("runs a busybox task's pod to Succeeded", { timeout: 240_000 }, async () => {
      const { kubeConfig, node } = probe;
      const core = kubeConfig.makeApiClient(CoreV1Api);
      const custom = kubeConfig.makeApiClient(CustomObjectsApi);
      const namespace = `odop-test-${randomBytes(4).toString("hex")}`;
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { "app.kubernetes.io/part-of": "odop-tests" } } } });
      const backend = new KubernetesBackend({
        kubeConfig,
        log: pino({ level: process.env["ODOP_TEST_LOG"] ?? "silent" }),
        odopImage: "busybox:1.36",
        odopCommand: ["true"],
        workspace: { kind: "emptyDir" },
        podTemplate: () => ({ spec: { securityContext: { runAsUser: 65534, runAsGroup: 65534 } } }),
        agent: { freeze: () => Promise.reject(new Error("no agent")), thaw: () => Promise.reject(new Error("no agent")) },
        namespace,
      });
      try {
        const task = OpTask.parse({
          apiVersion: "odop.io/v1alpha1",
          kind: "OpTask",
          metadata: { name: "hello", namespace },
          spec: { trigger: { manual: {} }, backend: "kubernetes", run: { image: "busybox:1.36", command: ["sh", "-c", "echo hello from odop"] } },
        });
        const created = (await custom.createNamespacedCustomObject({
          group: "odop.io",
          version: "v1alpha1",
          namespace,
          plural: "opexecutions",
          body: { apiVersion: "odop.io/v1alpha1", kind: "OpExecution", metadata: { name: "hello-1", namespace }, spec: { taskRef: { name: "hello" }, executionId: randomUUID(), trigger: { reason: "Manual" } } },
        })) as unknown;
        const execution = OpExecution.parse(created);
        const ref: StageRef = { execution: `${namespace}/hello-1`, stage: "run", attempt: 1 };
        const first = await backend.start({ ...ref, task, opExecution: execution, node, argv: [], env: {}, cwd: "/", cores: [0], ioBound: false });
        expect(["running", "exited"]).toContain(first.state);

        const deadline = Date.now() + 180_000;
        let state = await backend.observe(ref);
        while (state.state === "running" && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 1000));
          state = await backend.observe(ref);
        }
        expect(state).toMatchObject({ state: "exited", exitCode: 0 });
        let phase: string | undefined;
        while (phase !== "Succeeded" && phase !== "Failed" && Date.now() < deadline) {
          phase = (await core.readNamespacedPod({ namespace, name: "hello-1-1" })).status?.phase;
          if (phase !== "Succeeded") await new Promise((r) => setTimeout(r, 1000));
        }
        expect(phase).toBe("Succeeded");
      } finally {
        await backend.close();
        await core.deleteNamespace({ name: namespace });
      }
    });
  });
} else {
  skipWithReason("kubernetes backend on a cluster", "runs a busybox task's pod to Succeeded on a node of the cluster that KUBECONFIG names", probe.reason);
}
