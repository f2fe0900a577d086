/**
 * The Kubernetes backend on the test control plane (docs/k8s-harness.md): it creates the
 * pod of a tiny task (as user 65534 through a pod template) on a kwok node, in a
 * namespace that enforces Pod Security `restricted`, and waits until the pod Succeeded
 * and the run stage exited 0. The pod is owned by a real OpExecution, so the garbage
 * collector keeps it. Without a control plane (a developer's machine without Go) the
 * lane is skipped, with the reason in its name and on stderr; in CI it fails.
 */
import { randomUUID } from "node:crypto";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { OpExecution } from "../../../src/api/opexecution.ts";
import { OpTask } from "../../../src/api/optask.ts";
import { KubernetesBackend } from "../../../src/backends/kubernetes/backend.ts";
import type { StageRef } from "../../../src/backends/types.ts";
import { cluster, unavailable } from "../../support/cluster.ts";
import { deleteKwokNodes, kwokNodes, RESTRICTED, suiteId, TEST_ODOP_IMAGE } from "../../support/k8s/fixtures.ts";

const probe = cluster();

if (probe.ok) {
  describe(`kubernetes backend on the test control plane (${probe.server})`, () => {
    it("runs a busybox task's pod to Succeeded on a kwok node", { timeout: 120_000 }, async () => {
      const { kubeConfig } = probe;
      const core = kubeConfig.makeApiClient(CoreV1Api);
      const custom = kubeConfig.makeApiClient(CustomObjectsApi);
      const suite = suiteId("backend");
      const namespace = `${suite}-work`;
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { "app.kubernetes.io/part-of": "odop-tests", ...RESTRICTED } } } });
      const [node] = await kwokNodes(kubeConfig, suite, 1);
      if (node === undefined) throw new Error("no kwok node");
      const backend = new KubernetesBackend({
        kubeConfig,
        log: pino({ level: process.env["ODOP_TEST_LOG"] ?? "silent" }),
        odopImage: TEST_ODOP_IMAGE,
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

        const deadline = Date.now() + 60_000;
        let state = await backend.observe(ref);
        while (state.state === "running" && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 200));
          state = await backend.observe(ref);
        }
        expect(state).toMatchObject({ state: "exited", exitCode: 0 });
        let phase: string | undefined;
        while (phase !== "Succeeded" && phase !== "Failed" && Date.now() < deadline) {
          phase = (await core.readNamespacedPod({ namespace, name: "hello-1-1" })).status?.phase;
          if (phase !== "Succeeded") await new Promise((r) => setTimeout(r, 200));
        }
        expect(phase).toBe("Succeeded");
      } finally {
        await backend.close();
        await core.deleteNamespace({ name: namespace });
        await deleteKwokNodes(kubeConfig, suite);
      }
    });
  });
} else {
  unavailable("kubernetes backend on the test control plane", "runs a busybox task's pod to Succeeded on a kwok node", probe.reason);
}
