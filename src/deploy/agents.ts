/**
 * The node agents (deploy/agents.yaml; the chart's templates/agents.yaml renders the same
 * objects): a Namespace, a ServiceAccount and the `odop agent` DaemonSet. The controller's
 * side (ingest port, token, the Service agents push to) is in controller.ts.
 *
 * Why its own namespace: the agent needs hostPID, hostNetwork, a writable hostPath of
 * /sys/fs/cgroup and added capabilities, which only the `privileged` Pod Security level
 * admits. Relaxing the controller's namespace would admit that for every pod there; a
 * namespace holding only this DaemonSet keeps the controller's `restricted`. The cost is
 * the token Secret, which must exist in both namespaces.
 *
 * What the pod asks for, and why (nothing more; `privileged: false`):
 * - hostPID: the node's processes in /proc (main application, odop's stages, thread ticks).
 * - hostNetwork: /proc/net/dev and /sys/class/net of the node, not of a pod (network
 *   throughput), and the freezer listening on the node's address, where the controller
 *   calls it (http://<node InternalIP>:9180), without relying on the CNI's hostPort support.
 * - root, with CAP_SYS_PTRACE (other processes' environ and open files, for ODOP_EXECUTION
 *   and trigger files) and CAP_DAC_READ_SEARCH (those /proc files are mode 0400 and owned
 *   by the process's user: the stage pods run as 65532); every other capability dropped.
 * - /sys/fs/cgroup of the node, read-write: finding pods' cgroups under kubepods, and
 *   writing cgroup.freeze and cpuset.cpus (files owned by root: no DAC_OVERRIDE needed).
 * - no ServiceAccount token: the agent never talks to the API server.
 * This is as trusted as root on the node (hostPID with CAP_SYS_PTRACE reaches every process).
 */
import { type AgentOptions, AGENT_TOKEN_KEY, type ControllerOptions, DEFAULTS, FREEZER_PORT, INGEST_PORT, INGEST_SERVICE } from "./controller.ts";

type Manifest = Record<string, unknown>;

export const AGENT_NAME = "odop-agent";
export const AGENT_LABELS = { "app.kubernetes.io/name": "odop", "app.kubernetes.io/component": "agent", "app.kubernetes.io/part-of": "odop" };
/** Selector labels never change after install (a DaemonSet's selector is immutable). */
export const AGENT_SELECTOR = { "app.kubernetes.io/name": "odop", "app.kubernetes.io/component": "agent" };
/** Where the token Secret is mounted; ODOP_AGENT_TOKEN_FILE names the key's file (reread on every push). */
export const TOKEN_DIR = "/etc/odop/agent-token";
/** Measured RSS is about 120 MB (bench/README.md, "Agent"); no CPU limit (0.3 % of a core at 1 s). */
export const AGENT_RESOURCES = { requests: { cpu: "20m", memory: "128Mi" }, limits: { memory: "256Mi" } };
/** Agents must run where the main applications run, and HPC nodes are often tainted. */
export const AGENT_TOLERATIONS = [{ operator: "Exists" }];

export const AGENT_CONTAINER_SECURITY = {
  privileged: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"], add: ["SYS_PTRACE", "DAC_READ_SEARCH"] },
};
/** The image runs as 65532; the agent must be root to read every process and write cgroup files. */
export const AGENT_POD_SECURITY = { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, seccompProfile: { type: "RuntimeDefault" } };

/** The agents' push URL: the controller's ingest Service, by its cluster DNS name. */
export function controllerUrl(o: ControllerOptions): string {
  return `http://${INGEST_SERVICE}.${o.namespace}.svc:${INGEST_PORT}`;
}

function meta(name: string, namespace?: string): Manifest {
  return { name, ...(namespace === undefined ? {} : { namespace }), labels: { ...AGENT_LABELS } };
}

function daemonSet(o: ControllerOptions, a: AgentOptions): Manifest {
  const hostPaths = a.hostPaths.map((path, i) => ({ name: `host-${i}`, path }));
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: meta(AGENT_NAME, a.namespace),
    spec: {
      selector: { matchLabels: { ...AGENT_SELECTOR } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } },
      template: {
        metadata: { labels: { ...AGENT_LABELS } },
        spec: {
          serviceAccountName: AGENT_NAME,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          hostPID: true,
          hostNetwork: true,
          // Resolve the controller's Service name from the node's network namespace.
          dnsPolicy: "ClusterFirstWithHostNet",
          securityContext: AGENT_POD_SECURITY,
          tolerations: AGENT_TOLERATIONS,
          containers: [
            {
              name: "agent",
              image: o.image,
              imagePullPolicy: "IfNotPresent",
              args: ["agent", "--controller", controllerUrl(o), "--interval", a.interval, "--main-kubernetes-pods", "--freezer-listen", `0.0.0.0:${FREEZER_PORT}`],
              env: [
                { name: "ODOP_NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                { name: "ODOP_AGENT_TOKEN_FILE", value: `${TOKEN_DIR}/${AGENT_TOKEN_KEY}` },
              ],
              ports: [{ name: "freezer", containerPort: FREEZER_PORT, hostPort: FREEZER_PORT, protocol: "TCP" }],
              resources: AGENT_RESOURCES,
              securityContext: AGENT_CONTAINER_SECURITY,
              volumeMounts: [
                { name: "cgroup", mountPath: "/sys/fs/cgroup" },
                { name: "token", mountPath: TOKEN_DIR, readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
                ...hostPaths.map((h) => ({ name: h.name, mountPath: h.path, readOnly: true })),
              ],
            },
          ],
          volumes: [
            { name: "cgroup", hostPath: { path: "/sys/fs/cgroup", type: "Directory" } },
            { name: "token", secret: { secretName: a.tokenSecret, defaultMode: 0o400 } },
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
            ...hostPaths.map((h) => ({ name: h.name, hostPath: { path: h.path, type: "Directory" } })),
          ],
        },
      },
    },
  };
}

/** Namespace (Pod Security `privileged`), ServiceAccount and DaemonSet; none without agents. */
export function agentManifests(o: ControllerOptions = DEFAULTS): Manifest[] {
  const a = o.agents;
  if (a === undefined) return [];
  if (a.namespace === o.namespace) throw new Error(`the agents' namespace must not be the controller's (${o.namespace}): it runs with Pod Security privileged`);
  return [
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: a.namespace, labels: { ...AGENT_LABELS, "pod-security.kubernetes.io/enforce": "privileged" } },
    },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(AGENT_NAME, a.namespace), automountServiceAccountToken: false },
    daemonSet(o, a),
  ];
}
