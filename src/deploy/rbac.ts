/**
 * Every permission the controller holds, in one list. deploy/rbac.yaml and the chart's
 * templates/rbac.yaml are both generated from it (`npm run manifests`), and
 * test/deploy checks that what they grant, rendered, is exactly this list.
 *
 * Left out on purpose:
 * - secrets: stage pods name their Secrets (env, volumes); the kubelet reads them, the
 *   controller never does. The agents' bearer token is mounted into the controller pod.
 * - pods/log: `odop logs` runs with the user's own credentials, and a failed stage's
 *   last lines reach the controller through the pod status (stage containers use
 *   terminationMessagePolicy: FallbackToLogsOnError).
 * - pods/exec: pausing a stage freezes its cgroup on the node (the agent), never an exec.
 * - persistentvolumeclaims: a PVC workspace is a generic ephemeral volume in the stage
 *   pod template; Kubernetes creates and deletes the claim with the pod.
 * - optasks create/update/delete: users own tasks. Executions go with their task through
 *   ownerReferences (garbage collection); the controller never deletes one itself, but
 *   needs the delete verb to adopt executions people create (see opexecutions).
 */

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

/**
 * Where a permission is granted:
 * - `cluster`: cluster-scoped resources; always a ClusterRole.
 * - `watched`: namespaced resources of the namespaces the controller watches; a
 *   ClusterRole when it watches the whole cluster, else a Role in each watched namespace.
 * - `controller`: the controller's own namespace only; a Role there.
 */
export type Scope = "cluster" | "watched" | "controller";

export type Permission = {
  scope: Scope;
  apiGroups: readonly string[];
  resources: readonly string[];
  verbs: readonly Verb[];
  /** "lease": limited to the controller's own Lease by name. */
  onlyNamed?: "lease";
  /** Granted only when this feature is on. */
  onlyWith?: "leaderElection";
  /** Why the controller needs it (one line). */
  reason: string;
};

const ODOP = "odop.io";
const CORE = "";

export const PERMISSIONS: readonly Permission[] = [
  {
    scope: "watched",
    apiGroups: [ODOP],
    resources: ["optasks"],
    verbs: ["get", "list", "watch"],
    reason: "reconciles tasks: reads their triggers, requirements and policy",
  },
  {
    scope: "watched",
    apiGroups: [ODOP],
    resources: ["optasks/status"],
    verbs: ["update", "patch"],
    reason: "writes a task's Ready condition, counts, last result and learned profile",
  },
  {
    scope: "watched",
    apiGroups: [ODOP],
    resources: ["optasks/finalizers"],
    verbs: ["update"],
    reason: "executions point to their task with blockOwnerDeletion, which OwnerReferencesPermissionEnforcement allows only then",
  },
  {
    scope: "watched",
    apiGroups: [ODOP],
    resources: ["opexecutions"],
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
    reason: "creates executions from triggers; adopts those people create (an ownerReference to their task, which OwnerReferencesPermissionEnforcement allows only with delete)",
  },
  {
    scope: "watched",
    apiGroups: [ODOP],
    resources: ["opexecutions/status"],
    verbs: ["update", "patch"],
    reason: "writes an execution's phase, conditions, placement and usage",
  },
  {
    scope: "watched",
    apiGroups: [ODOP],
    resources: ["opexecutions/finalizers"],
    verbs: ["update"],
    reason: "stage pods point to their execution with blockOwnerDeletion",
  },
  {
    scope: "cluster",
    apiGroups: [ODOP],
    resources: ["opnodes"],
    verbs: ["get", "list", "watch", "create", "delete"],
    reason: "one OpNode per node whose agent reports; removed when the node leaves",
  },
  {
    scope: "cluster",
    apiGroups: [ODOP],
    resources: ["opnodes/status"],
    verbs: ["update", "patch"],
    reason: "writes capacity, heartbeat and harvestable resources at a bounded rate",
  },
  {
    scope: "cluster",
    apiGroups: [CORE],
    resources: ["nodes"],
    verbs: ["get", "list", "watch"],
    reason: "matches a task's target.nodeSelector to nodes and notices nodes that left",
  },
  {
    scope: "cluster",
    apiGroups: [CORE],
    resources: ["pods"],
    verbs: ["list", "watch"],
    reason: "sums what every pod requests on each node, to know what is free before node agents report (store/kubernetes-nodes.ts)",
  },
  {
    scope: "watched",
    apiGroups: [CORE],
    resources: ["pods"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
    reason: "runs each stage as a pinned pod, observes it, re-adopts it after a restart; marks it stopped or paused (a merge patch of labels and annotations) and deletes it",
  },
  {
    scope: "watched",
    apiGroups: [CORE],
    resources: ["events"],
    verbs: ["create", "patch"],
    reason: "records what happened to tasks and executions; patch counts repeats",
  },
  {
    scope: "controller",
    apiGroups: ["coordination.k8s.io"],
    resources: ["leases"],
    verbs: ["create"],
    onlyWith: "leaderElection",
    reason: "creates the leader-election Lease (create cannot be limited by name)",
  },
  {
    scope: "controller",
    apiGroups: ["coordination.k8s.io"],
    resources: ["leases"],
    verbs: ["get", "update"],
    onlyNamed: "lease",
    onlyWith: "leaderElection",
    reason: "reads and renews the leader-election Lease",
  },
  {
    scope: "controller",
    apiGroups: [CORE],
    resources: ["configmaps"],
    verbs: ["get", "list", "watch"],
    reason: "reads the stage pod template and follows its changes",
  },
];

/** A Kubernetes PolicyRule, in the field order the API server prints. */
export type PolicyRule = {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
};

export type RuleOptions = { leaseName: string; leaderElection: boolean };

/** The permissions of one scope, filtered by the features that are on. */
export function permissionsOf(scope: Scope, options: Pick<RuleOptions, "leaderElection">): Permission[] {
  return PERMISSIONS.filter((p) => p.scope === scope && (p.onlyWith !== "leaderElection" || options.leaderElection));
}

/** The PolicyRule a permission grants. */
export function ruleOf(permission: Permission, leaseName: string): PolicyRule {
  return {
    apiGroups: [...permission.apiGroups],
    resources: [...permission.resources],
    ...(permission.onlyNamed === "lease" ? { resourceNames: [leaseName] } : {}),
    verbs: [...permission.verbs],
  };
}

/** The rules of one scope, as a Role or ClusterRole lists them. */
export function rulesOf(scope: Scope, options: RuleOptions): PolicyRule[] {
  return permissionsOf(scope, options).map((p) => ruleOf(p, options.leaseName));
}
