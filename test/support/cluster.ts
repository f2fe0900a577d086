/**
 * Finds the Kubernetes cluster that KUBECONFIG (or ~/.kube/config) names, for the lanes
 * that need a real API server: reachable, with a Ready schedulable node, and with the
 * odop CRDs (applied from crds/ and waited for when missing). When there is none, says
 * why, so each lane can skip visibly: the reason goes into the suite's name and stderr.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { ApiextensionsV1Api, CoreV1Api, KubeConfig, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import { describe, it } from "vitest";
import { parse } from "yaml";

const CRD_FOLDER = join(import.meta.dirname, "..", "..", "crds");

export type Cluster = { ok: true; kubeConfig: KubeConfig; server: string; node: string } | { ok: false; reason: string };

let cached: Promise<Cluster> | undefined;

/** The cluster, probed once per test file. */
export function cluster(): Promise<Cluster> {
  cached ??= probe();
  return cached;
}

/** Registers a skipped suite whose name (and a stderr line) carries the reason. */
export function skipWithReason(lane: string, what: string, reason: string): void {
  const title = `${lane} — SKIPPED: ${reason}`;
  console.warn(title);
  describe.skip(title, () => {
    it(what, () => undefined);
  });
}

async function probe(): Promise<Cluster> {
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
  try {
    for (const file of readdirSync(CRD_FOLDER).filter((f) => f.endsWith(".yaml"))) {
      const crd = parse(readFileSync(join(CRD_FOLDER, file), "utf8")) as V1CustomResourceDefinition;
      const name = crd.metadata?.name ?? "";
      try {
        await withTimeout(crds.readCustomResourceDefinition({ name }), 5_000);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 401 || code === 403) return { ok: false, reason: `cluster at ${server} refuses to show CRDs (HTTP ${String(code)})` };
        if (code !== 404) throw error;
        await crds.createCustomResourceDefinition({ body: crd });
        await established(crds, name);
      }
    }
  } catch (error) {
    return { ok: false, reason: `cluster at ${server} lacks the odop CRDs and they could not be applied (${messageOf(error)})` };
  }
  return { ok: true, kubeConfig, server, node };
}

async function established(crds: ApiextensionsV1Api, name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const crd = await crds.readCustomResourceDefinition({ name });
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  const first = error.message.split("\n")[0] ?? error.message;
  return detail === undefined || detail === "" ? first : `${first}: ${detail}`;
}
