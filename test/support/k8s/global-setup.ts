/**
 * vitest's global setup: one test control plane for the whole run (docs/k8s-harness.md),
 * started before the first test file and stopped after the last. Test files reach it
 * through test/support/cluster.ts, each in namespaces (and on kwok nodes) of its own.
 *
 * - Binaries are built when missing (binaries.ts); a warm cache starts in seconds.
 * - In CI (CI=true) a control plane that cannot be built or started fails the run.
 * - Elsewhere, without Go and without a cache, or with ODOP_K8S=off, the cluster lanes
 *   say SKIPPED and why.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { tools } from "../../deploy/tools.ts";
import { ensureBinaries, findBinaries } from "./binaries.ts";
import { startControlPlane } from "./control-plane.ts";

const run = promisify(execFile);
const CRDS = join(import.meta.dirname, "../../../crds");

/** What test files are told about the control plane. */
export type ClusterInfo =
  | { ok: true; server: string; kubeconfig: string; caFile: string; versions: Record<string, string>; crds: { ok: true } | { ok: false; error: string } }
  | { ok: false; reason: string };

declare module "vitest" {
  export interface ProvidedContext {
    odopCluster: ClusterInfo;
  }
}

const say = (line: string) => process.stderr.write(`[k8s] ${line}\n`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const ci = process.env["CI"] === "true";
  const unavailable = (reason: string) => {
    if (ci) throw new Error(`the test control plane is required in CI: ${reason}`);
    say(`SKIPPED: the cluster lanes will be skipped: ${reason}`);
    project.provide("odopCluster", { ok: false, reason });
  };
  if (process.env["ODOP_K8S"] === "off") {
    unavailable("ODOP_K8S=off");
    return () => Promise.resolve();
  }
  const found = await findBinaries();
  if (!found.ok && !found.go.ok) {
    unavailable(`the test control plane is not built (${found.missing.join(", ")}) and ${found.go.reason}`);
    return () => Promise.resolve();
  }
  const binaries = found.ok ? found.binaries : await ensureBinaries(say);
  const plane = await startControlPlane({ binaries, log: say });
  const crds = await applyCrds(plane.kubeconfig);
  if (!crds.ok) say(`the CRDs were not all accepted: ${crds.error}`);
  project.provide("odopCluster", { ok: true, server: plane.server, kubeconfig: plane.kubeconfig, caFile: plane.caFile, versions: plane.versions, crds });
  return () => plane.stop();
}

/** `kubectl apply -f crds/`, then waits until every CRD is Established. */
export async function applyCrds(kubeconfig: string): Promise<{ ok: true } | { ok: false; error: string }> {
  const { kubectl } = tools();
  const env = { ...process.env, KUBECONFIG: kubeconfig };
  try {
    await run(kubectl, ["apply", "-f", CRDS], { env });
    await run(kubectl, ["wait", "--for=condition=Established", "--timeout=60s", "-f", CRDS], { env });
    return { ok: true };
  } catch (error) {
    const e = error as { stderr?: string; message?: string };
    return { ok: false, error: (e.stderr ?? e.message ?? String(error)).trim() };
  }
}
