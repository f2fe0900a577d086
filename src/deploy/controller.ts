/**
 * The plain manifests of the controller (deploy/): Namespace, ServiceAccount, RBAC,
 * Deployment, metrics Service and the stage pod template ConfigMap. The chart
 * (charts/odop) renders the same objects; test/deploy compares the two.
 *
 * Contract with `odop controller` (what the Deployment hands it):
 * - ODOP_NAMESPACE, ODOP_POD_NAME: its namespace and pod name (the Lease holder id).
 * - ODOP_WATCH_NAMESPACES: comma-separated namespaces to watch; empty for all.
 * - ODOP_LEADER_ELECTION "true" | "false", ODOP_LEASE_NAME: the Lease in ODOP_NAMESPACE.
 * - ODOP_POD_TEMPLATES: the ConfigMap in ODOP_NAMESPACE whose key STAGE_POD_KEY is the
 *   template merged into every stage pod.
 * - ODOP_WORKSPACE "emptyDir" | "pvc", ODOP_WORKSPACE_CLAIM: the stage pods' workspace
 *   (Workspace below); the claim name is empty for emptyDir.
 * - ODOP_HTTP_PORT: serves /healthz, /readyz and /metrics.
 * - ODOP_PATH: a writable folder (the root file system is read-only).
 * - With node agents (ControllerOptions.agents; src/deploy/agents.ts): ODOP_INGEST_PORT, where
 *   the agents push (container port `agents`, Service INGEST_SERVICE); ODOP_AGENT_TOKEN, their
 *   bearer token from a Secret the user creates (never generated here: no token is committed),
 *   which both authenticates pushes and is sent to each node's freezer; ODOP_AGENT_PORT, the
 *   freezer's port, called at http://<node InternalIP>:<port>.
 */
import { kubernetesYaml } from "../api/kube-yaml.ts";
import pkg from "../../package.json" with { type: "json" };
import { type PolicyRule, rulesOf } from "./rbac.ts";

export const VERSION: string = pkg.version;
export const NAMESPACE = "odop-system";
export const NAME = "odop-controller";
export const POD_TEMPLATES = "odop-pod-templates";
export const STAGE_POD_KEY = "stage-pod.yaml";
export const HTTP_PORT = 8080;
/** Where agents push (ODOP_INGEST_PORT), and the Service in front of it. */
export const INGEST_PORT = 8470;
export const INGEST_SERVICE = `${NAME}-agents`;
/** Each node's agent serves its freezer here (ODOP_AGENT_PORT); the controller calls http://<node InternalIP>:FREEZER_PORT. */
export const FREEZER_PORT = 9180;
/** The Secret holding the agents' bearer token (key AGENT_TOKEN_KEY): created by the user, never by `npm run manifests`. */
export const AGENT_TOKEN_SECRET = "odop-agent-token";
export const AGENT_TOKEN_KEY = "token";
/** Placeholder until images are published: ghcr.io/odop/odop tagged with the package version. */
export const IMAGE = `ghcr.io/odop/odop:${VERSION}`;

type Manifest = Record<string, unknown>;

export const LABELS = { "app.kubernetes.io/name": "odop", "app.kubernetes.io/component": "controller", "app.kubernetes.io/part-of": "odop" };
/** Selector labels never change after install (a Deployment's selector is immutable). */
export const SELECTOR = { "app.kubernetes.io/name": "odop", "app.kubernetes.io/component": "controller" };

/**
 * Workspace of the stage pods: an emptyDir per pod, or a claim that already exists in
 * every namespace where tasks run (each execution gets its own subPath, so its attempts
 * share it). The controller only names the claim: it needs no PVC rights.
 */
export type Workspace = { type: "emptyDir" } | { type: "pvc"; claimName: string };

/**
 * Defaults merged under every stage pod (the backend's fields win; see
 * src/backends/kubernetes/pod-template.ts). No service account token: stages have no
 * business with the API server.
 */
export function stagePodTemplate(): Manifest {
  return {
    metadata: { labels: { "app.kubernetes.io/managed-by": "odop" } },
    spec: { automountServiceAccountToken: false, enableServiceLinks: false },
  };
}

/** The node agents' DaemonSet (src/deploy/agents.ts). */
export type AgentOptions = {
  /** Their own namespace, with Pod Security `privileged`; the controller's stays `restricted`. */
  namespace: string;
  /** The token Secret's name, in both the controller's and the agents' namespace. */
  tokenSecret: string;
  /** `odop agent --interval`. */
  interval: string;
  /** Node folders mounted read-only at the same path, so that agents can report file-trigger folders there. */
  hostPaths: readonly string[];
};

export const AGENT_DEFAULTS: AgentOptions = { namespace: "odop-agents", tokenSecret: AGENT_TOKEN_SECRET, interval: "1s", hostPaths: [] };

export type ControllerOptions = {
  namespace: string;
  image: string;
  replicas: number;
  leaderElection: boolean;
  watchNamespaces: readonly string[];
  workspace: Workspace;
  /** Node agents push to the controller; undefined: no agents (no ingest, and pausing stage pods fails). */
  agents: AgentOptions | undefined;
};

/**
 * What deploy/ installs: the controller with node agents (pausing stage pods and file
 * triggers need them), and one replica. Every replica takes pushes but only the leader
 * schedules, and the agents' Service spreads pushes over replicas: with two, the leader
 * would see each node only part of the time. Leader election stays on, so a rollout's
 * surge pod never acts alongside the old one.
 */
export const DEFAULTS: ControllerOptions = {
  namespace: NAMESPACE,
  image: IMAGE,
  replicas: 1,
  leaderElection: true,
  watchNamespaces: [],
  workspace: { type: "emptyDir" },
  agents: AGENT_DEFAULTS,
};

/** The chart's default values: no agents (installs from before the agents do not change on upgrade), two replicas. */
export const CHART_DEFAULTS: ControllerOptions = { ...DEFAULTS, replicas: 2, agents: undefined };

function meta(name: string, namespace?: string): Manifest {
  return { name, ...(namespace === undefined ? {} : { namespace }), labels: { ...LABELS } };
}

/** ServiceAccount, ClusterRole(s), Role(s) and their bindings. */
export function rbacManifests(o: ControllerOptions = DEFAULTS): Manifest[] {
  const rules = { leaseName: NAME, leaderElection: o.leaderElection };
  const subject = [{ kind: "ServiceAccount", name: NAME, namespace: o.namespace }];
  const role = (kind: "Role" | "ClusterRole", namespace: string | undefined, list: PolicyRule[]): Manifest[] => [
    { apiVersion: "rbac.authorization.k8s.io/v1", kind, metadata: meta(NAME, namespace), rules: list },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: `${kind}Binding`,
      metadata: meta(NAME, namespace),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind, name: NAME },
      subjects: subject,
    },
  ];
  const clusterWide = o.watchNamespaces.length === 0;
  return [
    // The token is mounted by the controller's pod spec only; nothing else that runs
    // under this account gets one by default.
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(NAME, o.namespace), automountServiceAccountToken: false },
    ...role("ClusterRole", undefined, [...rulesOf("cluster", rules), ...(clusterWide ? rulesOf("watched", rules) : [])]),
    ...o.watchNamespaces.flatMap((ns) => role("Role", ns, rulesOf("watched", rules))),
    ...role("Role", o.namespace, rulesOf("controller", rules)),
  ];
}

export const RESTRICTED_POD_SECURITY = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } };
export const RESTRICTED_CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};
export const RESOURCES = { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } };

export function controllerEnv(o: ControllerOptions): Manifest[] {
  return [
    { name: "ODOP_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "ODOP_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "ODOP_WATCH_NAMESPACES", value: o.watchNamespaces.join(",") },
    { name: "ODOP_LEADER_ELECTION", value: String(o.leaderElection) },
    { name: "ODOP_LEASE_NAME", value: NAME },
    { name: "ODOP_POD_TEMPLATES", value: POD_TEMPLATES },
    { name: "ODOP_WORKSPACE", value: o.workspace.type },
    { name: "ODOP_WORKSPACE_CLAIM", value: o.workspace.type === "pvc" ? o.workspace.claimName : "" },
    { name: "ODOP_HTTP_PORT", value: String(HTTP_PORT) },
    { name: "ODOP_PATH", value: "/var/lib/odop" },
    ...(o.agents === undefined
      ? []
      : [
          { name: "ODOP_INGEST_PORT", value: String(INGEST_PORT) },
          { name: "ODOP_AGENT_PORT", value: String(FREEZER_PORT) },
          // The env, not a file: the controller sends it to the freezers too. A rotated token
          // needs a rollout restart of the controller (the agents reread their file).
          { name: "ODOP_AGENT_TOKEN", valueFrom: { secretKeyRef: { name: o.agents.tokenSecret, key: AGENT_TOKEN_KEY } } },
        ]),
  ];
}

/** The Service agents push to. Every replica serves it; only the leader schedules (see DEFAULTS). */
function ingestService(o: ControllerOptions): Manifest {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(INGEST_SERVICE, o.namespace),
    spec: {
      type: "ClusterIP",
      selector: { ...SELECTOR },
      ports: [{ name: "agents", port: INGEST_PORT, targetPort: "agents", protocol: "TCP" }],
    },
  };
}

/** Namespace, Deployment, metrics Service, the agents' Service (with agents) and the stage pod template ConfigMap. */
export function controllerManifests(o: ControllerOptions = DEFAULTS): Manifest[] {
  const probe = (path: string, period: number): Manifest => ({ httpGet: { path, port: "http" }, periodSeconds: period, failureThreshold: 3 });
  return [
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: o.namespace,
        labels: { ...LABELS, "pod-security.kubernetes.io/enforce": "restricted" },
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta(NAME, o.namespace),
      spec: {
        replicas: o.replicas,
        selector: { matchLabels: { ...SELECTOR } },
        template: {
          metadata: { labels: { ...LABELS } },
          spec: {
            serviceAccountName: NAME,
            automountServiceAccountToken: true,
            securityContext: RESTRICTED_POD_SECURITY,
            // Replicas on different nodes, so that losing one node keeps a leader candidate.
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: { ...SELECTOR } } },
            ],
            containers: [
              {
                name: "controller",
                image: o.image,
                imagePullPolicy: "IfNotPresent",
                args: ["controller"],
                env: controllerEnv(o),
                ports: [
                  { name: "http", containerPort: HTTP_PORT, protocol: "TCP" },
                  ...(o.agents === undefined ? [] : [{ name: "agents", containerPort: INGEST_PORT, protocol: "TCP" }]),
                ],
                readinessProbe: probe("/readyz", 10),
                livenessProbe: { ...probe("/healthz", 20), initialDelaySeconds: 10 },
                // No CPU limit: throttling a controller slows every decision; the request reserves its share.
                resources: RESOURCES,
                securityContext: RESTRICTED_CONTAINER_SECURITY,
                volumeMounts: [
                  { name: "state", mountPath: "/var/lib/odop" },
                  { name: "tmp", mountPath: "/tmp" },
                ],
              },
            ],
            volumes: [
              { name: "state", emptyDir: {} },
              { name: "tmp", emptyDir: {} },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta(`${NAME}-metrics`, o.namespace),
      spec: {
        type: "ClusterIP",
        selector: { ...SELECTOR },
        ports: [{ name: "http-metrics", port: HTTP_PORT, targetPort: "http", protocol: "TCP" }],
      },
    },
    ...(o.agents === undefined ? [] : [ingestService(o)]),
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta(POD_TEMPLATES, o.namespace),
      data: { [STAGE_POD_KEY]: kubernetesYaml(stagePodTemplate()) },
    },
  ];
}
