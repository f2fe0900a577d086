/**
 * The scheduler's view of a Kubernetes cluster before node agents report: what each
 * Node has allocatable, less what the pods bound to it request (odop's own pods do not
 * count: their cores are odop's to manage). It is a coarse, requests-based view — a
 * core requested but idle is not harvested — that lets the controller place executions
 * on a cluster where agents do not run yet; agents' samples (per-core use, measured
 * every second) replace it node by node.
 *
 * Core ids are nominal here: without the kubelet's static CPU manager Kubernetes does
 * not say which cores a pod uses, so the free ones are numbered after the requested.
 */
import { CoreV1Api, type KubeConfig, type V1Node, type V1Pod, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { parseQuantity, toMilli, toUnits } from "../api/quantity.ts";
import type { NodeSample } from "../api/sample.ts";
import type { NodeView } from "../scheduler/types.ts";
import { Informer, withoutManagedFields } from "./kubernetes-informer.ts";

/** Pods odop created carry this label; their requests are odop's own. */
const MANAGED_BY = "app.kubernetes.io/managed-by";

export type NodeViewOptions = { memoryMarginBytes: number };

type Requests = { node: string; milliCpu: bigint; memory: bigint };
/** A pod's effective request, parsed once per version of the object (a view is taken every scheduler round). */
const requestsMemo = new WeakMap<V1Pod, Requests | null>();
/** A node's allocatable cores and memory, parsed once per version of the object. */
const allocatableMemo = new WeakMap<V1Node, { cores: number; memory: bigint }>();

/** What a pod that holds resources requests on its node; null for odop's own pods and finished ones. */
function requestsOf(pod: V1Pod): Requests | null {
  const memo = requestsMemo.get(pod);
  if (memo !== undefined) return memo;
  const node = pod.spec?.nodeName;
  let out: Requests | null = null;
  if (node !== undefined && pod.metadata?.labels?.[MANAGED_BY] !== "odop" && pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed") {
    const add = (containers: readonly { resources?: { requests?: Record<string, string> } }[] | undefined, max: boolean) => {
      let cpu = 0n;
      let memory = 0n;
      for (const c of containers ?? []) {
        const q = c.resources?.requests ?? {};
        const cpuQ = q["cpu"] === undefined ? undefined : parseQuantity(q["cpu"]);
        const memQ = q["memory"] === undefined ? undefined : parseQuantity(q["memory"]);
        const cpuM = cpuQ === undefined ? 0n : toMilli(cpuQ);
        const memB = memQ === undefined ? 0n : toUnits(memQ);
        cpu = max ? (cpuM > cpu ? cpuM : cpu) : cpu + cpuM;
        memory = max ? (memB > memory ? memB : memory) : memory + memB;
      }
      return { cpu, memory };
    };
    // A pod's effective request: the larger of its containers' sum and its largest init container.
    const main = add(pod.spec?.containers, false);
    const init = add(pod.spec?.initContainers, true);
    out = { node, milliCpu: main.cpu > init.cpu ? main.cpu : init.cpu, memory: main.memory > init.memory ? main.memory : init.memory };
  }
  requestsMemo.set(pod, out);
  return out;
}

function allocatableOf(node: V1Node): { cores: number; memory: bigint } {
  let memo = allocatableMemo.get(node);
  if (memo === undefined) {
    const allocatable = node.status?.allocatable ?? {};
    const cpuQ = parseQuantity(allocatable["cpu"] ?? "0");
    const memQ = parseQuantity(allocatable["memory"] ?? "0");
    memo = { cores: cpuQ === undefined ? 0 : Number(toMilli(cpuQ) / 1000n), memory: memQ === undefined ? 0n : toUnits(memQ) };
    allocatableMemo.set(node, memo);
  }
  return memo;
}

/** Pure: nodes and pods as the API server reports them → the scheduler's views. */
export function nodeViewsFrom(nodes: Iterable<V1Node>, pods: Iterable<V1Pod>, options: NodeViewOptions): NodeView[] {
  const requested = new Map<string, { milliCpu: bigint; memory: bigint }>();
  for (const pod of pods) {
    const r = requestsOf(pod);
    if (r === null) continue;
    const sum = requested.get(r.node) ?? { milliCpu: 0n, memory: 0n };
    sum.milliCpu += r.milliCpu;
    sum.memory += r.memory;
    requested.set(r.node, sum);
  }
  const views: NodeView[] = [];
  for (const node of nodes) {
    const name = node.metadata?.name ?? "";
    const { cores, memory } = allocatableOf(node);
    const r = requested.get(name) ?? { milliCpu: 0n, memory: 0n };
    const used = Math.min(cores, Number((r.milliCpu + 999n) / 1000n));
    const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    views.push({
      name,
      labels: node.metadata?.labels ?? {},
      cores: Array.from({ length: cores }, (_, id) => ({ id, mainUsage: id < used ? 1 : 0, harvestable: id >= used })),
      memoryAvailableBytes: Math.max(0, Number(memory - r.memory) - options.memoryMarginBytes),
      stale: !ready || node.spec?.unschedulable === true,
    });
  }
  return views;
}

/** Pods that still hold their requests; finished ones leave the informer's cache (a watch with this selector says DELETED when a pod stops matching). */
const UNFINISHED = "status.phase!=Succeeded,status.phase!=Failed";

/**
 * NodeSource over Node and Pod informers (see controller/node-source.ts).
 *
 * - Informers start with start(), when the replica leads: a standby lists and watches
 *   nothing cluster-wide.
 * - Lists are paginated (pageSize, default 500), and the pod list and watch select
 *   unfinished pods only, so a cluster's history of finished pods is never held.
 * - Each pod is kept as the little the view needs (node, requests, managed-by label).
 */
export class KubernetesNodeSource {
  readonly #api: CoreV1Api;
  readonly #watch: Watch;
  readonly #log: Logger;
  readonly #pageSize: number;
  readonly #options: NodeViewOptions;
  #nodes: Informer<V1Node> | undefined;
  #pods: Informer<V1Pod> | undefined;

  constructor(kubeConfig: KubeConfig, log: Logger, options: NodeViewOptions & { pageSize?: number } = { memoryMarginBytes: 1024 ** 3 }) {
    this.#api = kubeConfig.makeApiClient(CoreV1Api);
    this.#watch = new Watch(kubeConfig);
    this.#log = log;
    this.#pageSize = options.pageSize ?? 500;
    this.#options = options;
  }

  /** Starts listing and watching nodes and unfinished pods; idempotent. */
  start(): void {
    if (this.#nodes !== undefined) return;
    const openWatch = (path: string, query: Record<string, string>) => async (resourceVersion: string, onEvent: (type: string, object: unknown) => void, done: (error: unknown) => void) => {
      const controller = await this.#watch.watch(path, { ...query, resourceVersion, allowWatchBookmarks: true }, onEvent, done);
      return { abort: () => controller.abort() };
    };
    const nodes = new Informer<V1Node>({
      list: () => this.#pages((page) => this.#api.listNode(page), {}, withoutManagedFields),
      watch: openWatch("/api/v1/nodes", {}),
      decode: (raw) => withoutManagedFields(raw as V1Node),
      keyOf: (n) => n.metadata?.name ?? "",
      versionOf: (n) => n.metadata?.resourceVersion,
      log: this.#log.child({ kind: "Node" }),
    });
    const pods = new Informer<V1Pod>({
      list: () => this.#pages((page) => this.#api.listPodForAllNamespaces(page), { fieldSelector: UNFINISHED }, slimPod),
      watch: openWatch("/api/v1/pods", { fieldSelector: UNFINISHED }),
      decode: (raw) => slimPod(raw as V1Pod),
      keyOf: (p) => `${p.metadata?.namespace ?? ""}/${p.metadata?.name ?? ""}`,
      versionOf: (p) => p.metadata?.resourceVersion,
      log: this.#log.child({ kind: "Pod", scope: "cluster" }),
    });
    this.#nodes = nodes;
    this.#pods = pods;
    // The informers' caches are the only copy: no handler, so nothing is cloned per event.
    nodes.start();
    pods.start();
  }

  /** True once both informers have listed. */
  get synced(): boolean {
    return this.#nodes?.synced === true && this.#pods?.synced === true;
  }

  refresh(): Promise<void> {
    return Promise.resolve(); // the informers keep the caches current
  }

  views(_now: number): NodeView[] {
    return nodeViewsFrom(this.#nodes?.values() ?? [], this.#pods?.values() ?? [], this.#options);
  }

  latest(): NodeSample | undefined {
    return undefined;
  }

  /** The node's InternalIP as the API server reports it (agents listen on the node's address). */
  addressOf(node: string): string | undefined {
    const addresses = this.#nodes?.peek(node)?.status?.addresses ?? [];
    return addresses.find((a) => a.type === "InternalIP")?.address ?? addresses.find((a) => a.type === "ExternalIP")?.address;
  }

  async close(): Promise<void> {
    await Promise.all([this.#nodes?.stop(), this.#pods?.stop()]);
  }

  /** Every page of a list (limit and continue), and the resourceVersion to watch from. */
  async #pages<T>(
    call: (page: { limit: number; _continue?: string; fieldSelector?: string }) => Promise<{ items: T[]; metadata?: { resourceVersion?: string; _continue?: string } }>,
    query: { fieldSelector?: string },
    slim: (item: T) => T = (item) => item,
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let token: string | undefined;
    let resourceVersion: string;
    do {
      const list = await call({ ...query, limit: this.#pageSize, ...(token === undefined ? {} : { _continue: token }) });
      for (const item of list.items) items.push(slim(item));
      resourceVersion = list.metadata?.resourceVersion ?? "";
      token = list.metadata?._continue === undefined || list.metadata._continue === "" ? undefined : list.metadata._continue;
    } while (token !== undefined);
    return { items, resourceVersion };
  }
}

/** What nodeViewsFrom reads of a pod, and nothing else. */
function slimPod(pod: V1Pod): V1Pod {
  const requests = (containers: readonly { resources?: { requests?: Record<string, string> } }[] | undefined) =>
    (containers ?? []).map((c) => ({ name: "", resources: { requests: { ...(c.resources?.requests?.["cpu"] === undefined ? {} : { cpu: c.resources.requests["cpu"] }), ...(c.resources?.requests?.["memory"] === undefined ? {} : { memory: c.resources.requests["memory"] }) } } }));
  const managedBy = pod.metadata?.labels?.[MANAGED_BY];
  return {
    metadata: {
      ...(pod.metadata?.name === undefined ? {} : { name: pod.metadata.name }),
      ...(pod.metadata?.namespace === undefined ? {} : { namespace: pod.metadata.namespace }),
      ...(pod.metadata?.resourceVersion === undefined ? {} : { resourceVersion: pod.metadata.resourceVersion }),
      ...(managedBy === undefined ? {} : { labels: { [MANAGED_BY]: managedBy } }),
    },
    spec: { containers: requests(pod.spec?.containers), initContainers: requests(pod.spec?.initContainers), ...(pod.spec?.nodeName === undefined ? {} : { nodeName: pod.spec.nodeName }) },
    ...(pod.status?.phase === undefined ? {} : { status: { phase: pod.status.phase } }),
  };
}
