/** What every rendering of the node agents must hold, deploy/agents.yaml and the chart alike. */
import { expect } from "vitest";

/** Names of the controller's variables that exist only with agents. */
export const INGEST_ENV = ["ODOP_INGEST_PORT", "ODOP_AGENT_PORT", "ODOP_AGENT_TOKEN"];

/** Every value of `key` anywhere in `value`. */
export function valuesOf(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => valuesOf(v, key));
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === key ? [v] : []), ...valuesOf(v, key)]);
}

/**
 * The agents' DaemonSet and ServiceAccount: no API token, never privileged, only the two
 * capabilities, every taint tolerated, the bearer token from the Secret `secret`, and
 * host folders other than /sys/fs/cgroup read-only.
 */
export function expectSafeAgents(docs: readonly any[], secret: string): void {
  const daemonSets = docs.filter((d) => d.kind === "DaemonSet");
  expect(daemonSets).toHaveLength(1);
  const ds = daemonSets[0];
  const pod = ds.spec.template.spec;
  const sa = docs.find((d) => d.kind === "ServiceAccount" && d.metadata.name === pod.serviceAccountName && d.metadata.namespace === ds.metadata.namespace);
  expect(sa, "the agents' own ServiceAccount").toBeDefined();
  expect(sa.automountServiceAccountToken).toBe(false);
  expect(pod.automountServiceAccountToken).toBe(false);
  expect(valuesOf(pod, "projected"), "no projected token volume").toEqual([]);
  // The whole rendering, not only the DaemonSet: nothing is privileged.
  expect(valuesOf(docs, "privileged")).not.toContain(true);
  expect(valuesOf(docs, "allowPrivilegeEscalation")).not.toContain(true);

  expect(pod.containers).toHaveLength(1);
  const container = pod.containers[0];
  expect(container.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  expect(container.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["SYS_PTRACE", "DAC_READ_SEARCH"] });
  expect(pod.hostPID).toBe(true);
  expect(pod.hostIPC ?? false).toBe(false);

  // A toleration with operator Exists and no key or effect matches every taint.
  expect(pod.tolerations).toContainEqual({ operator: "Exists" });

  // The token: a file from the Secret, never a value in the manifest.
  const tokenFile = container.env.find((e: any) => e.name === "ODOP_AGENT_TOKEN_FILE")?.value as string;
  expect(tokenFile).toBeDefined();
  const mount = container.volumeMounts.find((m: any) => tokenFile.startsWith(`${m.mountPath}/`));
  expect(mount, "a volume holds the token file").toBeDefined();
  expect(mount.readOnly).toBe(true);
  const volume = pod.volumes.find((v: any) => v.name === mount.name);
  expect(volume.secret).toMatchObject({ secretName: secret });
  expect(tokenFile.slice(mount.mountPath.length + 1)).toBe("token");
  expect(container.env.map((e: any) => e.name)).not.toContain("ODOP_AGENT_TOKEN");
  expect(container.args).not.toContain("--token-file");

  // Host folders: the cgroup tree writable (cgroup.freeze), anything else read-only.
  for (const v of pod.volumes.filter((x: any) => x.hostPath !== undefined)) {
    const mounted = container.volumeMounts.filter((m: any) => m.name === v.name);
    expect(mounted, v.name).toHaveLength(1);
    if (v.hostPath.path === "/sys/fs/cgroup") expect(mounted[0].readOnly ?? false).toBe(false);
    else expect(mounted[0].readOnly, v.hostPath.path).toBe(true);
  }

  expect(container.env).toContainEqual({ name: "ODOP_NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } });
  expect(container.ports).toContainEqual({ name: "freezer", containerPort: 9180, hostPort: 9180, protocol: "TCP" });
  expect(ds.spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } });
  expect(container.resources).toMatchObject({ requests: { cpu: expect.any(String), memory: expect.any(String) }, limits: { memory: expect.any(String) } });
}

/** The controller's ingest: port 8470 named `agents`, the freezer port, and the token from the Secret `secret`. */
export function expectIngest(container: any, secret: string): void {
  expect(container.env).toContainEqual({ name: "ODOP_INGEST_PORT", value: "8470" });
  expect(container.env).toContainEqual({ name: "ODOP_AGENT_PORT", value: "9180" });
  expect(container.env).toContainEqual({ name: "ODOP_AGENT_TOKEN", valueFrom: { secretKeyRef: { name: secret, key: "token" } } });
  expect(container.ports).toContainEqual({ name: "agents", containerPort: 8470, protocol: "TCP" });
}

export function expectNoIngest(container: any): void {
  for (const name of INGEST_ENV) expect(container.env.map((e: any) => e.name)).not.toContain(name);
  expect(container.ports.map((p: any) => p.name)).not.toContain("agents");
}
