import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { controllerManifests, DEFAULTS, NAME, NAMESPACE, rbacManifests } from "../../src/deploy/controller.ts";
import { PERMISSIONS, rulesOf } from "../../src/deploy/rbac.ts";
import { ROOT } from "./tools.ts";

const docs = (path: string): any[] =>
  parseAllDocuments(readFileSync(join(ROOT, path), "utf8"))
    .map((d) => d.toJS())
    .filter((d) => d !== null);

const find = (list: any[], kind: string, namespace?: string): any =>
  list.find((m) => m.kind === kind && m.metadata.namespace === namespace);

describe("the permission list (src/deploy/rbac.ts)", () => {
  it("has no wildcard, and a reason for every entry", () => {
    for (const p of PERMISSIONS) {
      for (const field of [p.apiGroups, p.resources, p.verbs]) expect(field, p.reason).not.toContain("*");
      expect(p.reason.length, JSON.stringify(p)).toBeGreaterThan(10);
      expect(p.reason).not.toContain("\n");
    }
  });

  it("never grants secrets, exec, logs, escalation or RBAC", () => {
    const resources = PERMISSIONS.flatMap((p) => p.resources);
    for (const forbidden of ["secrets", "pods/exec", "pods/attach", "pods/log", "serviceaccounts/token", "roles", "clusterroles", "rolebindings", "clusterrolebindings"]) {
      expect(resources).not.toContain(forbidden);
    }
    const verbs = PERMISSIONS.flatMap((p) => p.verbs) as string[];
    for (const forbidden of ["escalate", "bind", "impersonate", "deletecollection"]) expect(verbs).not.toContain(forbidden);
  });

  it("lists every resource once per scope, except the Lease split by name", () => {
    const keys = PERMISSIONS.map((p) => `${p.scope} ${p.apiGroups.join()} ${p.resources.join()} ${p.onlyNamed ?? ""}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("keeps the Lease and the pod template ConfigMap to the controller's namespace", () => {
    for (const p of PERMISSIONS.filter((q) => q.resources.includes("leases") || q.resources.includes("configmaps"))) {
      expect(p.scope, p.reason).toBe("controller");
    }
    expect(PERMISSIONS.filter((p) => p.resources.includes("opnodes") || p.resources.includes("nodes")).map((p) => p.scope)).toEqual([
      "cluster",
      "cluster",
    ]);
  });
});

describe("deploy/rbac.yaml", () => {
  const manifests = docs("deploy/rbac.yaml");
  const options = { leaseName: NAME, leaderElection: true };

  it("grants exactly the permission list: cluster and watched rules cluster-wide, the rest in odop-system", () => {
    expect(find(manifests, "ClusterRole").rules).toEqual([...rulesOf("cluster", options), ...rulesOf("watched", options)]);
    expect(find(manifests, "Role", NAMESPACE).rules).toEqual(rulesOf("controller", options));
    expect(manifests.map((m) => m.kind).sort()).toEqual(["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"]);
  });

  it("binds both roles to the controller's ServiceAccount", () => {
    const subject = [{ kind: "ServiceAccount", name: NAME, namespace: NAMESPACE }];
    expect(find(manifests, "ClusterRoleBinding")).toMatchObject({ roleRef: { kind: "ClusterRole", name: NAME }, subjects: subject });
    expect(find(manifests, "RoleBinding", NAMESPACE)).toMatchObject({ roleRef: { kind: "Role", name: NAME }, subjects: subject });
    expect(find(manifests, "ServiceAccount", NAMESPACE)).toMatchObject({ metadata: { name: NAME }, automountServiceAccountToken: false });
  });

  it("limits the Lease to its name, and gives the controller no Lease without leader election", () => {
    const lease = rulesOf("controller", options).filter((r) => r.resources.includes("leases"));
    expect(lease).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [NAME], verbs: ["get", "update"] },
    ]);
    expect(rulesOf("controller", { ...options, leaderElection: false }).flatMap((r) => r.resources)).toEqual(["configmaps"]);
  });
});

describe("rbacManifests with a namespace-scoped watch", () => {
  const manifests = rbacManifests({ ...DEFAULTS, watchNamespaces: ["hpc-a", "hpc-b"] });
  const options = { leaseName: NAME, leaderElection: true };

  it("keeps only cluster-scoped rules in the ClusterRole and gives each watched namespace a Role", () => {
    expect(find(manifests, "ClusterRole").rules).toEqual(rulesOf("cluster", options));
    for (const ns of ["hpc-a", "hpc-b"]) {
      expect(find(manifests, "Role", ns).rules).toEqual(rulesOf("watched", options));
      expect(find(manifests, "RoleBinding", ns).subjects).toEqual([{ kind: "ServiceAccount", name: NAME, namespace: NAMESPACE }]);
    }
  });
});

describe("deploy/controller.yaml", () => {
  const manifests = docs("deploy/controller.yaml");
  const deployment = find(manifests, "Deployment", NAMESPACE);
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];

  it("holds the Namespace, Deployment, metrics and agents Services and pod template ConfigMap", () => {
    expect(manifests.map((m) => m.kind)).toEqual(["Namespace", "Deployment", "Service", "Service", "ConfigMap"]);
    expect(manifests).toEqual(JSON.parse(JSON.stringify(controllerManifests())));
  });

  it("runs one `odop controller` with the package's image (with agents, only one replica sees every push)", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(deployment.spec.replicas).toBe(1);
    expect(container.env).toContainEqual({ name: "ODOP_LEADER_ELECTION", value: "true" });
    expect(container.args).toEqual(["controller"]);
    expect(container.image).toBe(`ghcr.io/odop/odop:${pkg.version}`);
    expect(pod.serviceAccountName).toBe(NAME);
    expect(pod.automountServiceAccountToken).toBe(true);
  });

  it("meets the restricted Pod Security Standard", () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(find(manifests, "Namespace").metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });

  it("serves probes and metrics on 8080, agents' pushes on 8470, and asks for resources", () => {
    expect(container.ports).toEqual([
      { name: "http", containerPort: 8080, protocol: "TCP" },
      { name: "agents", containerPort: 8470, protocol: "TCP" },
    ]);
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(find(manifests, "Service", NAMESPACE).spec.ports).toEqual([{ name: "http-metrics", port: 8080, targetPort: "http", protocol: "TCP" }]);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources.limits).toMatchObject({ memory: expect.any(String) });
  });

  it("gives stage pods no API token and an emptyDir workspace", () => {
    const template = parseAllDocuments(find(manifests, "ConfigMap", NAMESPACE).data["stage-pod.yaml"])[0]!.toJS();
    expect(template.spec.automountServiceAccountToken).toBe(false);
    expect(template.spec.volumes).toBeUndefined();
    expect(container.env).toContainEqual({ name: "ODOP_WORKSPACE", value: "emptyDir" });
  });
});
