import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One real Kubernetes control plane (etcd, kube-apiserver, controller manager,
    // scheduler, kwok) for the whole run: docs/k8s-harness.md.
    globalSetup: ["test/support/k8s/global-setup.ts"],
    // Integration tests start real processes and servers; give them room on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
