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
import { Informer } from "./kubernetes-informer.ts";

/** Pods odop created carry this label; their requests are odop's own. */
const MANAGED_BY = "app.kubernetes.io/managed-by";

export type NodeViewOptions = { memoryMarginBytes: number };

/** Pure: nodes and pods as the API server reports them → the scheduler's views. */
export function nodeViewsFrom(nodes: readonly V1Node[], pods: readonly V1Pod[], options: NodeViewOptions): NodeView[] {
  const requested = new Map<string, { milliCpu: bigint; memory: bigint }>();
  for (const pod of pods) {
    const node = pod.spec?.nodeName;
    if (node === undefined || pod.metadata?.labels?.[MANAGED_BY] === "odop") continue;
    if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
    const r = requested.get(node) ?? { milliCpu: 0n, memory: 0n };
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
    r.milliCpu += main.cpu > init.cpu ? main.cpu : init.cpu;
    r.memory += main.memory > init.memory ? main.memory : init.memory;
    requested.set(node, r);
  }
  return nodes.map((node) => {
    const name = node.metadata?.name ?? "";
    const allocatable = node.status?.allocatable ?? {};
    const cpuQ = parseQuantity(allocatable["cpu"] ?? "0");
    const memQ = parseQuantity(allocatable["memory"] ?? "0");
    const cores = cpuQ === undefined ? 0 : Number(toMilli(cpuQ) / 1000n);
    const r = requested.get(name) ?? { milliCpu: 0n, memory: 0n };
    const used = Math.min(cores, Number((r.milliCpu + 999n) / 1000n));
    const ready = node.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    const memoryFree = (memQ === undefined ? 0n : toUnits(memQ)) - r.memory;
    return {
      name,
      labels: node.metadata?.labels ?? {},
      cores: Array.from({ length: cores }, (_, id) => ({ id, mainUsage: id < used ? 1 : 0, harvestable: id >= used })),
      memoryAvailableBytes: Math.max(0, Number(memoryFree) - options.memoryMarginBytes),
      stale: !ready || node.spec?.unschedulable === true,
    };
  });
}

/** NodeSource over Node and Pod informers (see controller/node-source.ts). */
export class KubernetesNodeSource {
  readonly #nodes: Informer<V1Node>;
  readonly #pods: Informer<V1Pod>;
  readonly #cache = { nodes: new Map<string, V1Node>(), pods: new Map<string, V1Pod>() };
  readonly #options: NodeViewOptions;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(kubeConfig: KubeConfig, log: Logger, options: NodeViewOptions = { memoryMarginBytes: 1024 ** 3 }) {
    const api = kubeConfig.makeApiClient(CoreV1Api);
    const watch = new Watch(kubeConfig);
    const openWatch = (path: string) => async (resourceVersion: string, onEvent: (type: string, object: unknown) => void, done: (error: unknown) => void) => {
      const controller = await watch.watch(path, { resourceVersion, allowWatchBookmarks: true }, onEvent, done);
      return { abort: () => controller.abort() };
    };
    this.#options = options;
    this.#nodes = new Informer<V1Node>({
      list: async () => {
        const list = await api.listNode();
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? "" };
      },
      watch: openWatch("/api/v1/nodes"),
      decode: (raw) => raw as V1Node,
      keyOf: (n) => n.metadata?.name ?? "",
      versionOf: (n) => n.metadata?.resourceVersion,
      log,
    });
    this.#pods = new Informer<V1Pod>({
      list: async () => {
        const list = await api.listPodForAllNamespaces({ fieldSelector: "status.phase!=Succeeded,status.phase!=Failed" });
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? "" };
      },
      watch: openWatch("/api/v1/pods"),
      decode: (raw) => raw as V1Pod,
      keyOf: (p) => `${p.metadata?.namespace ?? ""}/${p.metadata?.name ?? ""}`,
      versionOf: (p) => p.metadata?.resourceVersion,
      log,
    });
    this.#unsubscribe.push(
      this.#nodes.subscribe((e) => (e.type === "DELETED" ? this.#cache.nodes.delete(e.object.metadata?.name ?? "") : this.#cache.nodes.set(e.object.metadata?.name ?? "", e.object))),
      this.#pods.subscribe((e) => {
        const key = `${e.object.metadata?.namespace ?? ""}/${e.object.metadata?.name ?? ""}`;
        if (e.type === "DELETED") this.#cache.pods.delete(key);
        else this.#cache.pods.set(key, e.object);
      }),
    );
  }

  refresh(): Promise<void> {
    return Promise.resolve(); // the informers keep the caches current
  }

  views(_now: number): NodeView[] {
    return nodeViewsFrom([...this.#cache.nodes.values()], [...this.#cache.pods.values()], this.#options);
  }

  latest(): NodeSample | undefined {
    return undefined;
  }

  close(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
  }
}
