/**
 * `odop controller`: the controller core on a Kubernetes cluster. OpTasks and
 * OpExecutions through the API server (KubernetesStore), stages as pods
 * (KubernetesBackend), nodes from Kubernetes' own view until node agents report
 * (KubernetesNodeSource), one acting replica (a Lease), /healthz, /readyz and /metrics.
 *
 * Losing the Lease ends the process (exit 1) instead of trying to become a standby
 * again: the Deployment restarts it clean, and no half-stopped loop can act.
 * SIGTERM stops the loops, leaves stage pods running (the next leader re-adopts them)
 * and releases the Lease for a fast hand-over.
 */
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import pino from "pino";
import pkg from "../../package.json" with { type: "json" };
import { httpAgentClient } from "../backends/kubernetes/agent-client.ts";
import { KubernetesBackend } from "../backends/kubernetes/backend.ts";
import { ConfigMapTemplateSource } from "../backends/kubernetes/template-source.ts";
import { systemClock } from "../controller/clock.ts";
import { Engine } from "../controller/engine.ts";
import { serveHealth } from "../controller/health-server.ts";
import { ControllerMetrics } from "../controller/metrics.ts";
import { notifierFor } from "../controller/notifier.ts";
import { podPlanner } from "../controller/stage-plans.ts";
import { localFileProbe } from "../agent/file-probe.ts";
import { AgentFileProbe } from "../controller/ingest/agent-file-probe.ts";
import { AgentNodeSource } from "../controller/ingest/agent-nodes.ts";
import { startIngestServer } from "../controller/ingest/server.ts";
import type { WatchRequest } from "../api/agent-push.ts";
import type { OpTask } from "../api/optask.ts";
import { loadNotifyKey } from "../staging/notify.ts";
import { KubernetesStore } from "../store/kubernetes.ts";
import { loadKubeConfig } from "../store/kubernetes-config.ts";
import { KubernetesNodeSource } from "../store/kubernetes-nodes.ts";
import { LeaderElector, leaseClientFor } from "../store/leader-election.ts";
import { type ControllerFlags, loadControllerConfig } from "./controller-config.ts";

type Out = { write(text: string): unknown };

const SAMPLE_INTERVAL_MS = 1000;
/** Each Lease request is aborted after this long: half the elector's renew deadline (10 s), as client-go's components do. */
const LEASE_REQUEST_TIMEOUT_MS = 5_000;
/** How long stopping may take before the process ends anyway (the Deployment's grace period is 30 s). */
const SHUTDOWN_BOUND_MS = 10_000;

/** Runs until SIGTERM/SIGINT (exit 0) or a lost Lease (exit 1); 2 for bad configuration. */
export async function controllerCommand(flags: ControllerFlags, err: Out): Promise<number> {
  const loaded = loadControllerConfig(process.env, flags);
  if (!loaded.ok) {
    for (const p of loaded.problems) err.write(`odop controller: ${p}\n`);
    return 2;
  }
  const config = loaded.config;
  if (config.watchNamespaces.length > 1) {
    err.write("odop controller: watching several namespaces is not supported yet; leave ODOP_WATCH_NAMESPACES empty (all) or name one\n");
    return 2;
  }
  const log = pino({ level: process.env["ODOP_LOG_LEVEL"] ?? "info", redact: ["*.token", "*.authorization", "*.headers.authorization"] });
  const kubeConfig = loadKubeConfig();
  const namespace = config.watchNamespaces[0];
  const templates =
    config.podTemplates === undefined ? undefined : new ConfigMapTemplateSource({ kubeConfig, log, namespace: config.namespace, name: config.podTemplates });
  await templates?.start();

  const store = new KubernetesStore({ kubeConfig, log, ...(namespace === undefined ? {} : { namespace }) });
  const nodes = new KubernetesNodeSource(kubeConfig, log);
  // Agents' samples replace the requests-based view node by node, and their folder reports feed file triggers.
  const late: { engine?: Engine } = {}; // the engine is made below, with these nodes
  const agentNodes = config.ingestPort === 0 ? undefined : new AgentNodeSource({ watchFor: () => triggerFolders(late.engine?.tasks() ?? []), fallback: nodes });
  const ingest =
    agentNodes === undefined
      ? undefined
      : await startIngestServer({ host: "0.0.0.0", port: config.ingestPort, token: agentToken(process.env), onPush: (push, at) => agentNodes.take(push, at), log: log.child({ component: "ingest" }) });
  const backend = new KubernetesBackend({
    kubeConfig,
    log,
    odopImage: process.env["ODOP_IMAGE"] ?? `ghcr.io/odop/odop:${pkg.version}`,
    workspace: config.workspace,
    cleanupPolicy: config.cleanup,
    ...(templates === undefined ? {} : { podTemplate: () => templates.get() }),
    // Agents listen on the node's own address (hostNetwork): its InternalIP, which resolves nowhere else than where it is.
    agent: httpAgentClient({ url: (node) => agentUrl(nodes.addressOf(node) ?? node, process.env["ODOP_AGENT_PORT"] ?? "9180"), token: () => process.env["ODOP_AGENT_TOKEN"] ?? "" }),
    ...(namespace === undefined ? {} : { namespace }),
  });
  const notifyKey = await loadNotifyKey({ env: process.env });
  let leading = false;
  const engine: Engine = new Engine({
    store,
    backend,
    // Pods are built from the task and execution: no process plans, no files on the controller's disk.
    planner: podPlanner,
    clock: systemClock,
    log,
    notifier: notifierFor(store, notifyKey, log),
    files: agentNodes === undefined ? localFileProbe : new AgentFileProbe(agentNodes),
    seesTriggerFiles: agentNodes !== undefined,
    nodes: agentNodes ?? nodes,
    workers: config.workers,
    sampleIntervalMs: SAMPLE_INTERVAL_MS,
    onReconcile: (kind, seconds, ok) => metrics.reconciled(kind, seconds, ok),
  });
  late.engine = engine;
  const metrics = new ControllerMetrics({ queueDepth: () => engine.queueDepth, phases: () => engine.phaseCounts(), leading: () => leading });
  const started = Date.now();
  // The leader is ready once the API server answered its lists (the pod and node informers
  // synced); a standby, once its Lease attempts get answers (it lists and watches nothing).
  let synced = false;
  let closing = false;
  const syncInformers = async () => {
    nodes.start();
    while (!closing) {
      try {
        await backend.ready(5_000);
        if (nodes.synced) {
          synced = true;
          return;
        }
      } catch (error) {
        if (!closing) log.warn({ err: error }, "the API server has not answered a list yet");
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  let elector: LeaderElector | undefined;
  const server = await serveHealth("0.0.0.0", config.httpPort, {
    // A standby's loops do not turn: it is live while it waits for the Lease.
    live: () => !leading || Date.now() - (engine.lastTickAt ?? started) < 10 * SAMPLE_INTERVAL_MS,
    ready: () => (leading ? synced : (elector?.healthy ?? false)),
    registry: metrics.registry,
  });
  log.info({ version: pkg.version, namespace: namespace ?? "(all)", leaderElection: config.leaderElection, port: config.httpPort }, "odop controller started");

  return await new Promise<number>((resolve) => {
    let stopping = false;
    elector = config.leaderElection
      ? new LeaderElector({
          client: leaseClientFor(kubeConfig, LEASE_REQUEST_TIMEOUT_MS),
          namespace: config.namespace,
          name: config.leaseName,
          identity: config.identity,
          onStartedLeading: () => {
            leading = true;
            log.info({ identity: config.identity }, "leading: reconciling");
            void syncInformers();
            engine.start();
          },
          onStoppedLeading: () => {
            leading = false;
            if (stopping) return; // a graceful stop gave the Lease up
            log.warn({ identity: config.identity }, "lost the lease: stopping");
            void shutdown(1);
          },
          // A conflict is another replica's move; anything else means this one cannot lead (readiness says so).
          onError: (error) => log.error({ err: error }, "leader election attempt failed"),
        })
      : undefined;
    const shutdown = async (code: number) => {
      if (stopping) return; // stopping releases the Lease, which reports "stopped leading" again
      stopping = true;
      closing = true;
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      const stopAll = async () => {
        await engine.stop({ interrupt: false });
        await elector?.stop();
        await backend.close();
        templates?.stop();
        await nodes.close();
        await ingest?.close();
        await store.close();
      };
      // Requests to an API server that stopped answering can hang: the process ends anyway.
      const bounded = await Promise.race([stopAll().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), SHUTDOWN_BOUND_MS).unref())]);
      if (!bounded) log.warn({ boundMs: SHUTDOWN_BOUND_MS }, "stopping took too long; exiting with requests still open");
      server.close();
      log.info({ code }, "odop controller stopped");
      resolve(code);
    };
    const onSignal = () => void shutdown(0);
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
    if (elector === undefined) {
      leading = true;
      void syncInformers();
      engine.start();
    } else elector.start();
  });
}

/** The folders of the tasks' file triggers: every agent watches them (a folder missing on a node is reported as such). */
function triggerFolders(tasks: readonly OpTask[]): WatchRequest[] {
  const seen = new Map<string, WatchRequest>();
  for (const t of tasks) {
    const { fileIn, fileUpdated } = t.spec.trigger;
    const request = fileIn !== undefined ? { folder: fileIn.path, pattern: fileIn.pattern } : fileUpdated !== undefined ? { folder: dirname(fileUpdated.path), pattern: basename(fileUpdated.path) } : undefined;
    if (request !== undefined) seen.set(`${request.folder}\u0000${request.pattern}`, request);
  }
  return [...seen.values()].slice(0, 256);
}

/** The URL of a node agent's freezer at `address` (an IPv6 address goes in brackets). */
export function agentUrl(address: string, port: string): string {
  return `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/** The agents' bearer token: a file read on every push (a rotated Secret applies), else ODOP_AGENT_TOKEN. */
function agentToken(env: NodeJS.ProcessEnv): () => string | undefined {
  const file = env["ODOP_AGENT_TOKEN_FILE"];
  if (file === undefined || file === "") return () => env["ODOP_AGENT_TOKEN"] || undefined;
  return () => {
    try {
      return readFileSync(file, "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  };
}
