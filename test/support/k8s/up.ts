/**
 * `npm run k8s:up`: the test control plane by hand (docs/k8s-harness.md). Builds what
 * is missing, starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
 * kwok, applies the CRDs, prints the KUBECONFIG to use, and stops everything on Ctrl-C
 * (ODOP_KEEP_K8S=1 keeps the folder). `--nodes N` creates N kwok nodes kwok-1…kwok-N.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { ensureBinaries } from "./binaries.ts";
import { startControlPlane } from "./control-plane.ts";
import { kwokNodes } from "./fixtures.ts";
import { applyCrds } from "./global-setup.ts";

const { values } = parseArgs({ options: { nodes: { type: "string", default: "0" } } });
const say = (line: string) => process.stderr.write(`[k8s] ${line}\n`);
const binaries = await ensureBinaries(say);
const plane = await startControlPlane({ binaries, log: say });
const crds = await applyCrds(plane.kubeconfig);
say(crds.ok ? "CRDs applied and Established" : `CRDs refused: ${crds.error}`);
const count = Number(values.nodes);
if (count > 0) {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(readFileSync(plane.kubeconfig, "utf8"));
  const names = await kwokNodes(kubeConfig, "kwok", count);
  say(`kwok nodes Ready: ${names.join(", ")} (label odop.test/suite=kwok)`);
}
say(`pids: ${JSON.stringify(plane.pids)}`);
console.log(`export KUBECONFIG=${plane.kubeconfig}`);
say("Ctrl-C stops the control plane");
await new Promise<void>((resolve) => {
  process.once("SIGINT", resolve);
  process.once("SIGTERM", resolve);
});
await plane.stop();
say("stopped");
