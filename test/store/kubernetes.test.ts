/**
 * The store contract against the test control plane's real API server (docs/k8s-harness.md),
 * with the CRDs from crds/ applied by kubectl. Each case runs in a fresh namespace that
 * is deleted afterwards. Without a control plane (a developer's machine without Go) the
 * suite is skipped, with the reason in its name and on stderr; in CI it fails.
 */
import { randomBytes } from "node:crypto";
import { CoreV1Api } from "@kubernetes/client-node";
import pino from "pino";
import { KubernetesStore } from "../../src/store/kubernetes.ts";
import { cluster, unavailable } from "../support/cluster.ts";
import { storeContract } from "./contract.ts";


const probe = cluster();

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
  unavailable("store contract: kubernetes", "runs the store contract against the test control plane", probe.reason);
}
