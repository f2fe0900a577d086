/**
 * The Helm chart through the real helm (v4) and kubectl (v1.34) binaries:
 *   helm lint charts/odop [--set ...]
 *   helm template <release> charts/odop --namespace <ns> [--include-crds] [--set ...]
 *   kubectl label --local -f - odop.io/offline-check=ok -o name
 * `kubectl create --dry-run=client` needs an API server (discovery) even with
 * --validate=false, so the offline kubectl check is `label --local`: it decodes every
 * document as a Kubernetes object (kind, apiVersion, typed metadata) without a server.
 */
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { agentManifests } from "../../src/deploy/agents.ts";
import { CHART_DEFAULTS, controllerManifests, DEFAULTS, NAME, rbacManifests, stagePodTemplate } from "../../src/deploy/controller.ts";
import { PERMISSIONS, ruleOf, rulesOf } from "../../src/deploy/rbac.ts";
import { expectIngest, expectNoIngest, expectSafeAgents } from "./agent-checks.ts";
import { runTool, tools } from "./tools.ts";

const { helm, kubectl } = tools();
const CHART = "charts/odop";

function template(release: string, namespace: string, set: string[] = [], extra: string[] = []): { text: string; docs: any[] } {
  const args = ["template", release, CHART, "--namespace", namespace, ...extra, ...set.flatMap((s) => ["--set", s])];
  const r = runTool(helm, args);
  expect(r.stderr).toBe("");
  expect(r.status, `helm ${args.join(" ")}`).toBe(0);
  const docs = parseAllDocuments(r.stdout).map((d) => {
    expect(d.errors, r.stdout).toEqual([]);
    return d.toJS();
  });
  return { text: r.stdout, docs: docs.filter((d) => d !== null) };
}

const find = (docs: any[], kind: string, namespace?: string): any[] =>
  docs.filter((m) => m.kind === kind && (namespace === undefined || m.metadata.namespace === namespace));
const one = (docs: any[], kind: string, namespace?: string): any => {
  const found = find(docs, kind, namespace);
  expect(found, `${kind} ${namespace ?? ""}`).toHaveLength(1);
  return found[0];
};

/** Every rule of every rendered Role and ClusterRole. */
const allRules = (docs: any[]): any[] => docs.filter((m) => m.kind === "Role" || m.kind === "ClusterRole").flatMap((m) => m.rules);

/** Every string anywhere in the rules must be a real name: no "*" in groups, resources, verbs or names. */
function expectNoWildcards(docs: any[]): void {
  for (const rule of allRules(docs)) {
    for (const key of ["apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"]) {
      for (const value of (rule[key] ?? []) as string[]) expect(value, JSON.stringify(rule)).not.toMatch(/\*/);
    }
    expect(rule.nonResourceURLs).toBeUndefined();
  }
  for (const binding of docs.filter((m) => m.kind === "RoleBinding" || m.kind === "ClusterRoleBinding")) {
    expect(binding.roleRef.name).not.toMatch(/^(cluster-admin|admin|edit)$/);
  }
}

/** Objects without labels and selectors (Helm adds release labels) and without the image, to compare with deploy/. */
function comparable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(comparable);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !["labels", "matchLabels", "selector", "image"].includes(k))
      // The stage pod template is YAML in a string; compare what it says, not its comments.
      .map(([k, v]) => [k, k === "stage-pod.yaml" && typeof v === "string" ? parse(v) : comparable(v)]),
  );
}

describe("helm lint", () => {
  it.each([
    ["default values", []],
    ["namespace-scoped watch, PVC workspace, no leader election", ["watch.namespaces={hpc-a,hpc-b}", "workspace.type=pvc", "leaderElection.enabled=false", "replicas=1"]],
    ["agents", ["agents.enabled=true", "replicas=1"]],
    ["agents with two replicas (a warning in NOTES, not an error)", ["agents.enabled=true"]],
    ["agents, the chart creating their token Secret, host folders", ["agents.enabled=true", "agents.tokenSecret.create=true", "agents.tokenSecret.token=not-a-real-token", "agents.hostPaths={/scratch}"]],
  ])("passes with %s", (_name, set) => {
    const r = runTool(helm, ["lint", CHART, "--strict", ...set.flatMap((s) => ["--set", s])]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("0 chart(s) failed");
  });
});

describe("helm template with default values", () => {
  const { text, docs } = template("odop", "odop-system", [], ["--include-crds"]);
  const lease = { leaseName: NAME, leaderElection: true };

  it("renders the expected kinds", () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(
      [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ].sort(),
    );
  });

  it("grants exactly the permission list, with no wildcard and no built-in admin role", () => {
    expect(one(docs, "ClusterRole").rules).toEqual([...rulesOf("cluster", lease), ...rulesOf("watched", lease)]);
    expect(one(docs, "Role", "odop-system").rules).toEqual(rulesOf("controller", lease));
    expect(allRules(docs)).toEqual(expect.arrayContaining(PERMISSIONS.map((p) => ruleOf(p, NAME))));
    expect(allRules(docs)).toHaveLength(PERMISSIONS.length);
    expectNoWildcards(docs);
  });

  it("renders the same objects as src/deploy without agents (labels, selectors and image aside)", () => {
    const plain = JSON.parse(JSON.stringify([...rbacManifests(CHART_DEFAULTS), ...controllerManifests(CHART_DEFAULTS)])).filter((m: any) => m.kind !== "Namespace");
    for (const expected of plain) {
      const rendered = docs.find((d) => d.kind === expected.kind && d.metadata.name === expected.metadata.name);
      expect(rendered, `${expected.kind}/${expected.metadata.name}`).toBeDefined();
      expect(comparable(rendered), `${expected.kind}/${expected.metadata.name}`).toEqual(comparable(expected));
    }
  });

  it("gives the controller the chart's image and a selector that matches its pods", () => {
    const deployment = one(docs, "Deployment");
    expect(deployment.spec.template.spec.containers[0].image).toMatch(/^ghcr\.io\/odop\/odop:\d+\.\d+\.\d+/);
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(deployment.spec.template.metadata.labels).toMatchObject(one(docs, "Service").spec.selector);
  });

  it("installs no agents: no ingest variables or port, no DaemonSet, no Secret", () => {
    expectNoIngest(one(docs, "Deployment").spec.template.spec.containers[0]);
    expect(find(docs, "DaemonSet")).toEqual([]);
    expect(find(docs, "Secret")).toEqual([]);
  });

  it("decodes as Kubernetes objects with kubectl, offline", () => {
    const r = runTool(kubectl, ["label", "--local", "-f", "-", "odop.io/offline-check=ok", "-o", "name"], text);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(docs.length);
    expect(r.stdout).toContain("deployment.apps/odop-controller");
  });
});

describe("helm template with a namespace-scoped watch and a PVC workspace", () => {
  const set = ["watch.namespaces={hpc-a,hpc-b}", "workspace.type=pvc", "workspace.pvc.storageClass=fast-scratch", "workspace.pvc.size=50Gi"];
  const { text, docs } = template("jobs", "ops", set);
  const lease = { leaseName: "jobs-odop-controller", leaderElection: true };

  it("keeps only cluster-scoped rules cluster-wide and gives each watched namespace a Role", () => {
    expect(one(docs, "ClusterRole").rules).toEqual(rulesOf("cluster", lease));
    for (const ns of ["hpc-a", "hpc-b"]) {
      expect(one(docs, "Role", ns).rules).toEqual(rulesOf("watched", lease));
      expect(one(docs, "RoleBinding", ns).subjects).toEqual([{ kind: "ServiceAccount", name: "jobs-odop-controller", namespace: "ops" }]);
    }
    expect(one(docs, "Role", "ops").rules).toEqual(rulesOf("controller", lease));
    expectNoWildcards(docs);
  });

  it("tells the controller what to watch", () => {
    const env = one(docs, "Deployment").spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: "ODOP_WATCH_NAMESPACES", value: "hpc-a,hpc-b" });
    expect(env).toContainEqual({ name: "ODOP_LEASE_NAME", value: "jobs-odop-controller" });
    expect(env).toContainEqual({ name: "ODOP_POD_TEMPLATES", value: "jobs-odop-pod-templates" });
  });

  it("creates the workspace claim in each watched namespace and names it to the controller", () => {
    for (const ns of ["hpc-a", "hpc-b"]) {
      expect(one(docs, "PersistentVolumeClaim", ns)).toMatchObject({
        metadata: { name: "odop-workspace", annotations: { "helm.sh/resource-policy": "keep" } },
        spec: { accessModes: ["ReadWriteMany"], storageClassName: "fast-scratch", resources: { requests: { storage: "50Gi" } } },
      });
    }
    expect(find(docs, "PersistentVolumeClaim")).toHaveLength(2);
    const env = one(docs, "Deployment").spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: "ODOP_WORKSPACE", value: "pvc" });
    expect(env).toContainEqual({ name: "ODOP_WORKSPACE_CLAIM", value: "odop-workspace" });
    expect(parse(one(docs, "ConfigMap", "ops").data["stage-pod.yaml"])).toEqual(stagePodTemplate());
  });

  it("decodes as Kubernetes objects with kubectl, offline", () => {
    const r = runTool(kubectl, ["label", "--local", "-f", "-", "odop.io/offline-check=ok", "-o", "name"], text);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(docs.length);
  });
});

describe("helm template with agents", () => {
  const { text, docs } = template("odop", "odop-system", ["agents.enabled=true", "replicas=1"]);

  it("renders the same objects as deploy/ (labels, selectors and image aside)", () => {
    const plain = JSON.parse(JSON.stringify([...rbacManifests(), ...controllerManifests(), ...agentManifests()])).filter(
      (m: any) => !(m.kind === "Namespace" && m.metadata.name === DEFAULTS.namespace),
    );
    for (const expected of plain) {
      const rendered = docs.find((d) => d.kind === expected.kind && d.metadata.name === expected.metadata.name && d.metadata.namespace === expected.metadata.namespace);
      expect(rendered, `${expected.kind}/${expected.metadata.name}`).toBeDefined();
      expect(comparable(rendered), `${expected.kind}/${expected.metadata.name}`).toEqual(comparable(expected));
    }
    expect(docs).toHaveLength(plain.length);
  });

  it("puts the agents in their own privileged namespace and leaves the release namespace alone", () => {
    const namespaces = find(docs, "Namespace");
    expect(namespaces.map((n) => n.metadata.name)).toEqual(["odop-agents"]);
    expect(namespaces[0].metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect(one(docs, "DaemonSet").metadata.namespace).toBe("odop-agents");
  });

  it("never mounts an API token, is never privileged, tolerates every taint and reads its token from the Secret", () => {
    expectSafeAgents(docs, "odop-agent-token");
    expect(find(docs, "Secret")).toEqual([]);
  });

  it("gives the controller the ingest, and the agents its Service's address and the chart's image", () => {
    const controller = one(docs, "Deployment").spec.template.spec.containers[0];
    expectIngest(controller, "odop-agent-token");
    const agent = one(docs, "DaemonSet").spec.template.spec.containers[0];
    expect(agent.image).toBe(controller.image);
    expect(agent.args).toContain("http://odop-controller-agents.odop-system.svc:8470");
    const service = docs.find((d) => d.kind === "Service" && d.metadata.name === "odop-controller-agents");
    expect(service.spec.ports).toEqual([{ name: "agents", port: 8470, targetPort: "agents", protocol: "TCP" }]);
    expect(one(docs, "Deployment").spec.template.metadata.labels).toMatchObject(service.spec.selector);
    const ds = one(docs, "DaemonSet");
    expect(ds.spec.template.metadata.labels).toMatchObject(ds.spec.selector.matchLabels);
    expect(ds.spec.selector.matchLabels).not.toEqual(one(docs, "Deployment").spec.selector.matchLabels);
  });

  it("grants the agents nothing: the RBAC is the controller's alone", () => {
    for (const binding of docs.filter((m) => m.kind === "RoleBinding" || m.kind === "ClusterRoleBinding")) {
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: NAME, namespace: "odop-system" }]);
    }
    expect(allRules(docs)).toHaveLength(PERMISSIONS.length);
  });

  it("decodes as Kubernetes objects with kubectl, offline", () => {
    const r = runTool(kubectl, ["label", "--local", "-f", "-", "odop.io/offline-check=ok", "-o", "name"], text);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toHaveLength(docs.length);
    expect(r.stdout).toContain("daemonset.apps/odop-agent");
  });
});

describe("helm template with agents and other values", () => {
  const set = [
    "agents.enabled=true",
    "agents.namespace=hpc-agents",
    "agents.interval=500ms",
    "agents.tokenSecret.name=push-token",
    "agents.tokenSecret.create=true",
    "agents.tokenSecret.token=not-a-real-token",
    "agents.tolerations[0].key=hpc",
    "agents.tolerations[0].operator=Exists",
    "agents.priorityClassName=odop-agents",
    "agents.hostPaths={/scratch,/lustre/proj}",
  ];
  const { docs } = template("jobs", "ops", set);
  const pod = one(docs, "DaemonSet", "hpc-agents").spec.template.spec;

  it("creates the token Secret in both namespaces when asked, with the same token", () => {
    const secrets = find(docs, "Secret");
    expect(secrets.map((s) => s.metadata.namespace).sort()).toEqual(["hpc-agents", "ops"]);
    for (const secret of secrets) {
      expect(secret.metadata.name).toBe("push-token");
      expect(Buffer.from(secret.data.token, "base64").toString()).toBe("not-a-real-token");
    }
    expectIngest(one(docs, "Deployment").spec.template.spec.containers[0], "push-token");
  });

  it("points the agents at this release's Service and renders their values", () => {
    const agent = pod.containers[0];
    expect(agent.args).toEqual(["agent", "--controller", "http://jobs-odop-controller-agents.ops.svc:8470", "--interval", "500ms", "--main-kubernetes-pods", "--freezer-listen", "0.0.0.0:9180"]);
    expect(one(docs, "DaemonSet", "hpc-agents").metadata.name).toBe("jobs-odop-agent");
    expect(pod.serviceAccountName).toBe("jobs-odop-agent");
    expect(pod.priorityClassName).toBe("odop-agents");
    expect(pod.tolerations).toEqual([{ key: "hpc", operator: "Exists" }]);
    expect(agent.volumeMounts).toContainEqual({ name: "host-1", mountPath: "/lustre/proj", readOnly: true });
    expect(pod.volumes).toContainEqual({ name: "host-1", hostPath: { path: "/lustre/proj", type: "Directory" } });
  });

  it("keeps the other safety properties (a keyed toleration aside)", () => {
    expectSafeAgents(
      docs.map((d) => (d.kind === "DaemonSet" ? { ...d, spec: { ...d.spec, template: { ...d.spec.template, spec: { ...pod, tolerations: [{ operator: "Exists" }] } } } } : d)),
      "push-token",
    );
  });

  it("creates no namespace when told it exists", () => {
    const { docs: without } = template("jobs", "ops", [...set, "agents.createNamespace=false"]);
    expect(find(without, "Namespace")).toEqual([]);
  });
});

describe("helm template with other values", () => {
  it("drops the Lease rules without leader election", () => {
    const { docs } = template("odop", "odop-system", ["leaderElection.enabled=false", "replicas=1"]);
    expect(one(docs, "Role", "odop-system").rules).toEqual(rulesOf("controller", { leaseName: NAME, leaderElection: false }));
    expect(one(docs, "Deployment").spec.template.spec.containers[0].env).toContainEqual({ name: "ODOP_LEADER_ELECTION", value: "false" });
  });

  it("renders stage pod defaults and controller placement from values", () => {
    const { docs } = template("odop", "odop-system", [
      "podTemplate.tolerations[0].key=hpc",
      "podTemplate.tolerations[0].operator=Exists",
      "imagePullSecrets[0].name=registry",
      "tolerations[0].key=infra",
      "tolerations[0].operator=Exists",
    ]);
    const pod = one(docs, "Deployment").spec.template.spec;
    expect(pod.imagePullSecrets).toEqual([{ name: "registry" }]);
    expect(pod.tolerations).toEqual([{ key: "infra", operator: "Exists" }]);
    const stagePod = parse(one(docs, "ConfigMap").data["stage-pod.yaml"]);
    expect(stagePod.spec.tolerations).toEqual([{ key: "hpc", operator: "Exists" }]);
    expect(stagePod.spec.automountServiceAccountToken).toBe(false);
  });

  it("renders no RBAC, ServiceAccount, Service or ConfigMap when they are switched off", () => {
    const { docs } = template("odop", "odop-system", ["rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=mine", "metrics.service.enabled=false", "podTemplate.create=false"]);
    expect(docs.map((d) => d.kind)).toEqual(["Deployment"]);
    expect(docs[0].spec.template.spec.serviceAccountName).toBe("mine");
  });

  it.each([
    ["two replicas without leader election", ["leaderElection.enabled=false"], "needs leaderElection.enabled"],
    ["an unknown workspace type", ["workspace.type=hostPath"], "workspace.type must be emptyDir or pvc"],
    ["creating a workspace claim with a cluster-wide watch", ["workspace.type=pvc"], "workspace.pvc.create needs watch.namespaces"],
    ["an existing ServiceAccount without a name", ["serviceAccount.create=false"], "serviceAccount.name is required"],
    ["agents in the release namespace", ["agents.enabled=true", "agents.namespace=default"], "agents.namespace must not be the release namespace"],
    ["creating the token Secret without a token", ["agents.enabled=true", "agents.tokenSecret.create=true"], "agents.tokenSecret.token is required"],
  ])("refuses %s", (_name, set, message) => {
    const r = runTool(helm, ["template", "odop", CHART, ...set.flatMap((s) => ["--set", s])]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });
});
