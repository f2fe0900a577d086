/**
 * The test control plane (test/support/k8s/, docs/k8s-harness.md) as the cluster lanes
 * see it: a KubeConfig for its admin, with the odop CRDs applied and Established by the
 * global setup. When there is no control plane (no Go on a developer's machine, or
 * ODOP_K8S=off) each lane says SKIPPED and why; in CI (CI=true) the global setup has
 * already failed the run, and a lane that finds the CRDs refused fails.
 */
import { readFileSync } from "node:fs";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { describe, inject, it } from "vitest";
import type { ClusterInfo } from "./k8s/global-setup.ts";

export type Cluster =
  | { ok: true; kubeConfig: KubeConfig; server: string; kubeconfigPath: string; caFile: string; versions: Record<string, string> }
  | { ok: false; reason: string };

let cached: Cluster | undefined;

/** The control plane of this run. */
export function cluster(): Cluster {
  cached ??= probe(inject("odopCluster"));
  return cached;
}

function probe(info: ClusterInfo | undefined): Cluster {
  if (info === undefined) return { ok: false, reason: "no test control plane (the global setup test/support/k8s/global-setup.ts did not run)" };
  if (!info.ok) return info;
  if (!info.crds.ok) return { ok: false, reason: `the API server refused the odop CRDs: ${info.crds.error}` };
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(readFileSync(info.kubeconfig, "utf8"));
  return { ok: true, kubeConfig, server: info.server, kubeconfigPath: info.kubeconfig, caFile: info.caFile, versions: info.versions };
}

/**
 * A lane that cannot run: skipped with the reason in its name (and on stderr) on a
 * developer's machine; in CI, a failing test, never a skip.
 */
export function unavailable(lane: string, what: string, reason: string): void {
  if (process.env["CI"] === "true") {
    describe(lane, () => {
      it(what, () => {
        throw new Error(`the test control plane is required in CI: ${reason}`);
      });
    });
    return;
  }
  const title = `${lane} — SKIPPED: ${reason}`;
  console.warn(title);
  describe.skip(title, () => {
    it(what, () => undefined);
  });
}

/** A fresh namespace for one test file or case, labelled so that leftovers are easy to find. */
export async function createNamespace(kubeConfig: KubeConfig, prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const name = `${prefix}-${Math.random().toString(16).slice(2, 8)}`;
  await core.createNamespace({ body: { metadata: { name, labels: { "app.kubernetes.io/part-of": "odop-tests", ...labels } } } });
  return name;
}
