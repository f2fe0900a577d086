/**
 * What the cluster lanes build on the test control plane: kwok nodes of their own, and
 * `odop controller` run as deploy/ installs it (its ServiceAccount and RBAC, the
 * Deployment's environment, a token from the TokenRequest API, never the admin's).
 *
 * Test files share one control plane, so each keeps to a suite id: its nodes carry the
 * label odop.test/suite=<id> (tasks select them with target.nodeSelector), and its
 * controller gets a namespace, ClusterRole and ClusterRoleBinding of its own, named
 * after the id, with the rules of deploy/rbac.yaml unchanged.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1EnvVar, type V1Node } from "@kubernetes/client-node";
import { parseAllDocuments, stringify } from "yaml";
import { tools } from "../../deploy/tools.ts";
import { eventually, ODOP_CLI } from "../engine.ts";
import { freePorts } from "../ports.ts";
import { KWOK_NODE_LABEL, SA_ISSUER } from "./control-plane.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "../../..");
export const SUITE_LABEL = "odop.test/suite";
/** The image odop's own stage containers get in the tests: kwok runs it to exit 0 (kwok-stages.ts). */
export const TEST_ODOP_IMAGE = "odop.test/odop:ok";

/** A short random id for a test file's objects. */
export function suiteId(prefix: string): string {
  return `${prefix}-${Math.random().toString(16).slice(2, 8)}`;
}

/** kubectl against the control plane, as the admin; rejects with its stderr. */
export async function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const { kubectl: bin } = tools();
  if (input === undefined) {
    try {
      const { stdout } = await run(bin, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string };
      throw new Error(`kubectl ${args.join(" ")}: ${(e.stderr ?? "").trim() || String(error)}`, { cause: error });
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(" ")}: ${err.trim() || `exit ${String(code)}`}`))));
    child.stdin.end(input);
  });
}

export type KwokNodeOptions = { cpu?: number; memory?: string; labels?: Record<string, string> };

/** Creates `count` kwok nodes named <suite>-n<i>, waits until they are Ready; returns their names. */
export async function kwokNodes(kubeConfig: KubeConfig, suite: string, count: number, options: KwokNodeOptions = {}): Promise<string[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const names = Array.from({ length: count }, (_, i) => `${suite}-n${i + 1}`);
  const resources = { cpu: String(options.cpu ?? 8), memory: options.memory ?? "32Gi", pods: "110" };
  for (const name of names) {
    const node: V1Node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { [KWOK_NODE_LABEL.key]: KWOK_NODE_LABEL.value, [SUITE_LABEL]: suite, "kubernetes.io/hostname": name, ...options.labels } },
      status: { allocatable: resources, capacity: resources },
    };
    await core.createNode({ body: node });
  }
  await eventually(
    async () => {
      const list = await core.listNode({ labelSelector: `${SUITE_LABEL}=${suite}` });
      const ready = list.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      return ready.length === count ? true : undefined;
    },
    `${count} kwok nodes of ${suite} Ready`,
    60_000,
  );
  return names;
}

export async function deleteKwokNodes(kubeConfig: KubeConfig, suite: string): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await core.deleteCollectionNode({ labelSelector: `${SUITE_LABEL}=${suite}` });
}

/** Pod Security `restricted`, enforced: what deploy/ gives odop-system, and what tests give the namespaces where stage pods run. */
export const RESTRICTED = { "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" };

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [key: string]: unknown };

function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(ROOT, "deploy", file), "utf8"))
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

export type DeployedRbac = { namespace: string; serviceAccount: string; clusterRole: string };

/**
 * deploy/rbac.yaml, applied with kubectl into the controller namespace `namespace`: the
 * namespaced objects move there and the cluster-scoped ones are renamed after it (so that
 * test files do not overwrite each other's bindings); every rule stays as shipped.
 */
export async function applyDeployedRbac(kubeconfig: string, namespace: string): Promise<DeployedRbac> {
  const docs = manifests("rbac.yaml").map((m) => {
    const copy = structuredClone(m);
    if (copy.kind === "ClusterRole" || copy.kind === "ClusterRoleBinding") copy.metadata.name = `${copy.metadata.name}-${namespace}`;
    else copy.metadata.namespace = namespace;
    if (copy.kind === "ClusterRoleBinding" || copy.kind === "RoleBinding") {
      const binding = copy as Manifest & { roleRef: { kind: string; name: string }; subjects: { namespace?: string }[] };
      if (binding.roleRef.kind === "ClusterRole") binding.roleRef.name = `${binding.roleRef.name}-${namespace}`;
      for (const s of binding.subjects) s.namespace = namespace;
    }
    return copy;
  });
  await kubectl(kubeconfig, ["apply", "-f", "-"], docs.map((d) => stringify(d)).join("---\n"));
  const sa = docs.find((d) => d.kind === "ServiceAccount");
  const role = docs.find((d) => d.kind === "ClusterRole");
  if (sa === undefined || role === undefined) throw new Error("deploy/rbac.yaml has no ServiceAccount or ClusterRole");
  return { namespace, serviceAccount: sa.metadata.name, clusterRole: role.metadata.name };
}

/** A kubeconfig that authenticates with a ServiceAccount token from the TokenRequest API. */
export async function serviceAccountKubeconfig(kubeConfig: KubeConfig, server: string, caFile: string, namespace: string, serviceAccount: string, file: string): Promise<string> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const request = await core.createNamespacedServiceAccountToken({
    namespace,
    name: serviceAccount,
    body: { spec: { audiences: [SA_ISSUER], expirationSeconds: 3600 } },
  });
  const token = request.status?.token;
  if (token === undefined || token === "") throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
  writeFileSync(
    file,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "odop-test", cluster: { server, "certificate-authority": caFile } }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: "odop-test", context: { cluster: "odop-test", user: serviceAccount, namespace } }],
      "current-context": "odop-test",
    }),
    { mode: 0o600 },
  );
  return file;
}

/** The controller container's environment in deploy/controller.yaml, with its downward API and Secret references resolved. */
function deployedEnv(resolve: { namespace: string; podName: string; secret: (name: string, key: string) => string }): Record<string, string> {
  const deployment = manifests("controller.yaml").find((m) => m.kind === "Deployment") as
    | (Manifest & { spec: { template: { spec: { containers: { name: string; env?: V1EnvVar[] }[] } } } })
    | undefined;
  const container = deployment?.spec.template.spec.containers.find((c) => c.name === "controller");
  if (container === undefined) throw new Error("deploy/controller.yaml has no controller container");
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = resolve.namespace;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = resolve.podName;
    else if (e.valueFrom?.secretKeyRef !== undefined) env[e.name] = resolve.secret(e.valueFrom.secretKeyRef.name ?? "", e.valueFrom.secretKeyRef.key);
    else throw new Error(`deploy/controller.yaml: env ${e.name} has a source the test fixture does not resolve`);
  }
  return env;
}

export type ControllerProcess = {
  identity: string;
  child: ChildProcess;
  httpPort: number;
  /** Where agents push (ODOP_INGEST_PORT), with the token of DeployedController.agentToken. */
  ingestPort: number;
  /** What it wrote to stdout and stderr (pino JSON lines). */
  output(): string;
  /** Resolves with the exit code (or signal) once it has exited. */
  exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it is gone. */
  stop(): Promise<void>;
};

export type DeployedController = {
  /** The controller's namespace (Pod Security restricted), where its Lease and pod template ConfigMap are. */
  namespace: string;
  kubeconfig: string;
  /** The agents' bearer token, in the Secret odop-agent-token the Deployment reads. */
  agentToken: string;
  /**
   * Starts one replica; `identity` is its pod name (the Lease holder). `server` replaces
   * the API server's URL (a proxy); `prefix` runs the process through a command (e.g.
   * one that moves it into a memory cgroup first).
   */
  start(identity: string, env?: Record<string, string>, options?: { server?: string; prefix?: readonly string[] }): Promise<ControllerProcess>;
  /** Stops every replica and deletes the namespace and cluster-scoped RBAC. */
  cleanup(): Promise<void>;
};

/**
 * The controller as deploy/ installs it, for stage pods in `watchNamespace`: namespace
 * `<suite>-sys` (restricted), deploy/rbac.yaml, the pod template ConfigMap and agent
 * token Secret the Deployment refers to, and replicas started as processes with the
 * Deployment's environment and a ServiceAccount token.
 */
export async function deployedController(cluster: { kubeConfig: KubeConfig; kubeconfigPath: string; server: string; caFile: string }, suite: string, watchNamespace: string): Promise<DeployedController> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const namespace = `${suite}-sys`;
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { "app.kubernetes.io/part-of": "odop-tests", ...RESTRICTED } } } });
  const rbac = await applyDeployedRbac(cluster.kubeconfigPath, namespace);
  const templates = manifests("controller.yaml").filter((m) => m.kind === "ConfigMap").map((m) => ({ ...m, metadata: { ...m.metadata, namespace } }));
  await kubectl(cluster.kubeconfigPath, ["apply", "-f", "-"], templates.map((d) => stringify(d)).join("---\n"));
  const agentToken = Math.random().toString(16).slice(2) + Math.random().toString(16).slice(2);
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: "odop-agent-token" }, stringData: { token: agentToken } } });
  const dir = mkdtempSync(join(tmpdir(), `odop-controller-${suite}-`));
  const kubeconfig = await serviceAccountKubeconfig(cluster.kubeConfig, cluster.server, cluster.caFile, namespace, rbac.serviceAccount, join(dir, "kubeconfig"));
  const replicas: ControllerProcess[] = [];

  const start = async (identity: string, extra: Record<string, string> = {}, options: { server?: string; prefix?: readonly string[] } = {}): Promise<ControllerProcess> => {
    const [httpPort, ingestPort] = await freePorts(2);
    if (httpPort === undefined || ingestPort === undefined) throw new Error("no free ports");
    const state = join(dir, identity);
    mkdirSync(state, { recursive: true });
    const env: Record<string, string> = {
      ...deployedEnv({
        namespace,
        podName: identity,
        secret: (name, key) => {
          if (name !== "odop-agent-token" || key !== "token") throw new Error(`deploy/controller.yaml refers to Secret ${name}/${key}, which the fixture does not make`);
          return agentToken;
        },
      }),
      // What differs from a pod: ports of this machine, a state folder, one watched namespace, the test image.
      ODOP_HTTP_PORT: String(httpPort),
      ODOP_INGEST_PORT: String(ingestPort),
      ODOP_PATH: state,
      ODOP_WATCH_NAMESPACES: watchNamespace,
      ODOP_IMAGE: TEST_ODOP_IMAGE,
      ...extra,
    };
    let config = kubeconfig;
    if (options.server !== undefined) {
      config = join(state, "kubeconfig");
      writeFileSync(config, readFileSync(kubeconfig, "utf8").replace(cluster.server, options.server), { mode: 0o600 });
    }
    const [command, ...args] = [...(options.prefix ?? []), process.execPath, ODOP_CLI, "controller"];
    const child = spawn(command ?? process.execPath, args, {
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", KUBECONFIG: config, ODOP_LOG_LEVEL: process.env["ODOP_TEST_CONTROLLER_LOG_LEVEL"] ?? "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    // ODOP_TEST_LOGS=<folder> keeps each replica's whole log there, for reading after a failure.
    const logFolder = process.env["ODOP_TEST_LOGS"];
    const logFile = logFolder === undefined ? undefined : join(logFolder, `${identity}.log`);
    if (logFolder !== undefined) mkdirSync(logFolder, { recursive: true });
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-2_000_000);
      if (logFile !== undefined) appendFileSync(logFile, d);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const exited = new Promise<number | NodeJS.Signals>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
    const proc: ControllerProcess = {
      identity,
      child,
      httpPort,
      ingestPort,
      output: () => output,
      exited,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(kill);
      },
    };
    replicas.push(proc);
    return proc;
  };

  return {
    namespace,
    kubeconfig,
    agentToken,
    start,
    cleanup: async () => {
      await Promise.all(replicas.map((r) => r.stop()));
      await kubectl(cluster.kubeconfigPath, ["delete", "clusterrole,clusterrolebinding", rbac.clusterRole, "--ignore-not-found"]);
      await core.deleteNamespace({ name: namespace });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GET http://127.0.0.1:<port><path> on a controller's health server; the status, or undefined when it does not answer. */
export async function healthStatus(port: number, path: "/healthz" | "/readyz" | "/metrics"): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2_000) });
    await res.text();
    return res.status;
  } catch {
    return undefined;
  }
}

/** What the cluster lanes read of an OpExecution. */
export type ExecutionView = {
  metadata: { name: string; uid: string };
  status?: { phase?: string; reason?: string; message?: string; node?: string; attempts?: number; conditions?: { type: string; status: string; reason: string; message: string }[] };
};

/**
 * Manual OpTasks and their OpExecutions in one namespace of a suite, as a person makes
 * them with kubectl: tasks run as pods (backend kubernetes) on the suite's kwok nodes,
 * one core by default.
 */
export function workNamespace(kubeConfig: KubeConfig, suite: string, namespace: string) {
  const objects = kubeConfig.makeApiClient(CustomObjectsApi);
  const group = { group: "odop.io", version: "v1alpha1", namespace } as const;
  const execution = async (name: string) => (await objects.getNamespacedCustomObject({ ...group, plural: "opexecutions", name })) as ExecutionView;
  return {
    /** A manual task whose run is `run` (e.g. { image }), with `spec` over the defaults. */
    createTask: (name: string, run: Record<string, unknown>, spec: Record<string, unknown> = {}) =>
      objects.createNamespacedCustomObject({
        ...group,
        plural: "optasks",
        body: {
          apiVersion: "odop.io/v1alpha1",
          kind: "OpTask",
          metadata: { name, namespace },
          spec: { trigger: { manual: {} }, backend: "kubernetes", target: { nodeSelector: { [SUITE_LABEL]: suite } }, run, requirements: { cpu: { min: 1, max: 1 }, memory: { min: "64Mi", max: "64Mi" } }, ...spec },
        },
      }),
    /** An OpExecution of `task`, as a person creates one. */
    createExecution: (name: string, task: string) =>
      objects.createNamespacedCustomObject({
        ...group,
        plural: "opexecutions",
        body: { apiVersion: "odop.io/v1alpha1", kind: "OpExecution", metadata: { name, namespace }, spec: { taskRef: { name: task }, executionId: randomUUID(), trigger: { reason: "Manual" } } },
      }),
    execution,
    /** Waits until execution `name` is in one of `phases`; `context` adds to the timeout's message (a controller's log). */
    phaseIs: (name: string, phases: string[], timeoutMs = 60_000, context: () => string = () => "") =>
      eventually(
        async () => {
          const e = await execution(name);
          return phases.includes(e.status?.phase ?? "") ? e : undefined;
        },
        `${name} in ${phases.join("|")}${context()}`,
        timeoutMs,
      ),
  };
}
