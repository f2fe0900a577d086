import { defineConfig } from "vitest/config";

// `npm run e2e`: the lanes that need a real Kubernetes cluster (KUBECONFIG), apart from
// the unit suite. Without a cluster every lane is skipped and says why.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
