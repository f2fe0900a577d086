/**
 * The store contract against a real API server: whatever KUBECONFIG (or ~/.kube/config)
 * names, e.g. `kind create cluster`. The odop CRDs are applied from crds/*.yaml when the
 * server lacks them and the user may create them; each case runs in a fresh namespace
 * that is deleted afterwards. Without a reachable cluster the suite is skipped, with the
 * reason in its name and on stderr, so that a green run never hides the skip.
 */
import { randomBytes } from "node:crypto";
import { CoreV1Api } from "@kubernetes/client-node";
import pino from "pino";
import { KubernetesStore } from "../../src/store/kubernetes.ts";
import { cluster, skipWithReason } from "../support/cluster.ts";
import { storeContract } from "./contract.ts";


const probe = await cluster();

if (probe.ok) {
  const kubeConfig = probe.kubeConfig;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  storeContract({
    name: `kubernetes (${kubeConfig.getCurrentCluster()?.server ?? "?"})`,
    make: async () => {
      const namespace = `odop-test-${randomBytes(4).toString("hex")}`;
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { "app.kubernetes.io/part-of": "odop-tests" } } } });
      const store = new KubernetesStore({ kubeConfig, log: pino({ level: process.env["ODOP_TEST_LOG"] ?? "silent" }), namespace });
      return {
        store,
        namespace,
        cleanup: async () => {
          await store.close();
          await core.deleteNamespace({ name: namespace });
        },
      };
    },
  });
} else {
  skipWithReason("store contract: kubernetes", "runs the store contract against the API server that KUBECONFIG names", probe.reason);
}
