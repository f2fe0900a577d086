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
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { OpExecution } from "../../../src/api/opexecution.ts";
import { OpTask } from "../../../src/api/optask.ts";
import { KubernetesBackend } from "../../../src/backends/kubernetes/backend.ts";
import type { StageRef } from "../../../src/backends/types.ts";

type Probe = { ok: true; kubeConfig: KubeConfig; node: string } | { ok: false; reason: string };

const probe = await probeCluster();

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
  const title = `kubernetes backend on a cluster — SKIPPED: ${probe.reason}`;
  console.warn(title);
  describe.skip(title, () => {
    it("runs a busybox task's pod to Succeeded on a node of the cluster that KUBECONFIG names", () => undefined);
  });
}

/** A reachable API server with a Ready node and the OpExecution CRD (applied when missing). */
async function probeCluster(): Promise<Probe> {
  const env = process.env["KUBECONFIG"];
  const files = env !== undefined && env !== "" ? env.split(delimiter).filter((f) => f !== "") : [join(homedir(), ".kube", "config")];
  if (!files.some((f) => existsSync(f))) {
    return { ok: false, reason: env === undefined || env === "" ? "no cluster reachable (KUBECONFIG unset, no ~/.kube/config)" : `no cluster reachable (KUBECONFIG=${env} names no file)` };
  }
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    return { ok: false, reason: `no cluster reachable (kubeconfig unreadable: ${messageOf(error)})` };
  }
  const server = kubeConfig.getCurrentCluster()?.server;
  if (server === undefined) return { ok: false, reason: "no cluster reachable (the kubeconfig has no current cluster)" };
  let node: string | undefined;
  try {
    const nodes = await withTimeout(kubeConfig.makeApiClient(CoreV1Api).listNode(), 5_000);
    node = nodes.items.find((n) => !n.spec?.unschedulable && n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))?.metadata?.name;
  } catch (error) {
    return { ok: false, reason: `no cluster reachable at ${server} (${messageOf(error)})` };
  }
  if (node === undefined) return { ok: false, reason: `cluster at ${server} has no Ready schedulable node` };
  const crds = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const name = "opexecutions.odop.io";
  try {
    await withTimeout(crds.readCustomResourceDefinition({ name }), 5_000);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 404) return { ok: false, reason: `cluster at ${server} does not show CRDs (${messageOf(error)})` };
    try {
      const crd = parse(readFileSync(join(import.meta.dirname, "..", "..", "..", "crds", "odop.io_opexecutions.yaml"), "utf8")) as V1CustomResourceDefinition;
      await crds.createCustomResourceDefinition({ body: crd });
      const deadline = Date.now() + 30_000;
      while (!(await crds.readCustomResourceDefinition({ name })).status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) {
        if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after 30 s`, { cause: error });
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch (applyError) {
      return { ok: false, reason: `cluster at ${server} lacks the odop CRDs and they could not be applied (${messageOf(applyError)})` };
    }
  }
  return { ok: true, kubeConfig, node };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  const first = error.message.split("\n")[0] ?? error.message;
  return detail === undefined || detail === "" ? first : `${first}: ${detail}`;
}
