import { describe, expect, it } from "vitest";
import { loadControllerConfig } from "../../src/cli/controller-config.ts";

describe("odop controller configuration", () => {
  it("has defaults a cluster install can live with", () => {
    const r = loadControllerConfig({ ODOP_POD_NAME: "odop-7d9f-abcde" }, {});
    expect(r).toEqual({
      ok: true,
      config: {
        namespace: "odop-system",
        identity: "odop-7d9f-abcde",
        watchNamespaces: [],
        leaderElection: true,
        leaseName: "odop-controller",
        workspace: { kind: "emptyDir" },
        httpPort: 8080,
        ingestPort: 0,
        workers: 16,
        cleanup: "delete-on-success",
        statePath: "/var/lib/odop",
      },
    });
  });

  it("reads what deploy/ sets, and lets flags win over the environment", () => {
    const env = {
      ODOP_NAMESPACE: "ops",
      ODOP_WATCH_NAMESPACES: "hpc-a, hpc-b",
      ODOP_LEADER_ELECTION: "false",
      ODOP_WORKSPACE: "pvc",
      ODOP_WORKSPACE_CLAIM: "odop-workspace",
      ODOP_HTTP_PORT: "9090",
      ODOP_POD_TEMPLATES: "odop-pod-templates",
    };
    const r = loadControllerConfig({ ...env, ODOP_CLEANUP: "keep" }, { httpPort: "8081", workers: "8" });
    expect(r.ok && r.config).toMatchObject({
      namespace: "ops",
      watchNamespaces: ["hpc-a", "hpc-b"],
      leaderElection: false,
      workspace: { kind: "pvc", claimName: "odop-workspace" },
      httpPort: 8081,
      workers: 8,
      cleanup: "keep",
      podTemplates: "odop-pod-templates",
    });
  });

  it("reports every bad value at once, naming the variable or flag and what it takes", () => {
    const r = loadControllerConfig({ ODOP_LEADER_ELECTION: "yes", ODOP_WATCH_NAMESPACES: "ok,Bad_NS", ODOP_WORKSPACE: "pvc" }, { httpPort: "eighty", workers: "0", cleanup: "sometimes" });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems).toEqual([
      'ODOP_WATCH_NAMESPACES: "Bad_NS" must be a DNS label: lower-case letters, digits and \'-\', starting and ending with a letter or digit',
      'ODOP_LEADER_ELECTION="yes": ODOP_LEADER_ELECTION / --leader-election is true or false',
      "ODOP_WORKSPACE_CLAIM: required when the workspace is pvc (the claim stage pods mount)",
      '--http-port="eighty": the HTTP port is a whole number',
      '--workers="0": workers is at least 1',
      '--cleanup="sometimes": the cleanup policy is delete-on-success or keep',
    ]);
  });

  it("takes node agents on ODOP_INGEST_PORT only with their token", () => {
    const refused = loadControllerConfig({ ODOP_INGEST_PORT: "8470" }, {});
    expect(refused.ok ? [] : refused.problems).toEqual([
      "ODOP_AGENT_TOKEN_FILE or ODOP_AGENT_TOKEN: the agents' bearer token is required while ODOP_INGEST_PORT / --ingest-port is not 0",
    ]);
    const taken = loadControllerConfig({ ODOP_AGENT_TOKEN_FILE: "/etc/odop/agent-token" }, { ingestPort: "8470" });
    expect(taken.ok && taken.config.ingestPort).toBe(8470);
  });
});
