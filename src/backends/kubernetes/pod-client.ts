/**
 * The pod calls the Kubernetes backend makes, on client-node's CoreV1Api, with every
 * error mapped through the store's mapping (NotFoundError, AlreadyExistsError,
 * KubernetesApiError with `transient`…), and the informer of odop's stage pods.
 *
 * - Pods are created with POST (create-if-absent): a pod is immutable, so an existing
 *   one is never re-applied, and the API server's AlreadyExists is the atomic "it is
 *   there already" that a GET-then-apply would race.
 * - odop's marks (stopped, paused, cpuset) are JSON merge patches of metadata only,
 *   with fieldManager "odop".
 * - Deletion carries a uid precondition, so it never deletes a newer pod of the same name.
 */
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { NotFoundError } from "../../store/errors.ts";
import { toStoreError } from "../../store/kubernetes-errors.ts";
import { type BackoffOptions, Informer, type ListResult, withoutManagedFields } from "../../store/kubernetes-informer.ts";
import { LABELS } from "./pod-spec.ts";

export const FIELD_MANAGER = "odop";
/** Selects every pod odop made. */
export const MANAGED_SELECTOR = `${LABELS.managedBy}=odop`;

export type PodClientOptions = {
  kubeConfig: KubeConfig;
  log: Logger;
  /** List and watch this namespace only; all namespaces when absent. */
  namespace?: string | undefined;
  pageSize?: number;
  watchBackoff?: BackoffOptions;
};

export class PodClient {
  readonly #core: CoreV1Api;
  readonly #watch: Watch;
  readonly #options: PodClientOptions;

  constructor(options: PodClientOptions) {
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#watch = new Watch(options.kubeConfig);
    this.#options = options;
  }

  async get(namespace: string, name: string): Promise<V1Pod | undefined> {
    try {
      return await this.#core.readNamespacedPod({ namespace, name });
    } catch (error) {
      const mapped = toStoreError(error, `pod ${namespace}/${name}`);
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  /** Creates the pod; throws AlreadyExistsError when one of that name exists. */
  async create(pod: V1Pod): Promise<V1Pod> {
    const namespace = pod.metadata?.namespace ?? "default";
    try {
      return await this.#core.createNamespacedPod({ namespace, body: pod, fieldManager: FIELD_MANAGER });
    } catch (error) {
      throw toStoreError(error, `pod ${namespace}/${pod.metadata?.name ?? ""}`);
    }
  }

  /** Merges labels and annotations (null removes one); undefined when the pod is gone. */
  async patchMetadata(
    namespace: string,
    name: string,
    metadata: { labels?: Record<string, string | null>; annotations?: Record<string, string | null> },
  ): Promise<V1Pod | undefined> {
    try {
      return await this.#core.patchNamespacedPod(
        { namespace, name, body: { metadata }, fieldManager: FIELD_MANAGER },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    } catch (error) {
      const mapped = toStoreError(error, `pod ${namespace}/${name}`);
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  /** Asks for the pod's deletion; false when it was gone already. */
  async delete(namespace: string, name: string, uid: string | undefined, gracePeriodSeconds: number): Promise<boolean> {
    try {
      await this.#core.deleteNamespacedPod({
        namespace,
        name,
        gracePeriodSeconds,
        propagationPolicy: "Background",
        ...(uid === undefined ? {} : { body: { preconditions: { uid } } }),
      });
      return true;
    } catch (error) {
      const mapped = toStoreError(error, `pod ${namespace}/${name}`);
      if (mapped instanceof NotFoundError) return false;
      throw mapped;
    }
  }

  /** Pods odop made that match `selector` as well, in `namespace` (all namespaces when undefined). */
  async list(namespace: string | undefined, selector?: string): Promise<ListResult<V1Pod>> {
    const labelSelector = selector === undefined ? MANAGED_SELECTOR : `${MANAGED_SELECTOR},${selector}`;
    const items: V1Pod[] = [];
    let token: string | undefined;
    let resourceVersion: string | undefined;
    try {
      do {
        const page = { labelSelector, limit: this.#options.pageSize ?? 500, ...(token === undefined ? {} : { _continue: token }) };
        const list = namespace === undefined ? await this.#core.listPodForAllNamespaces(page) : await this.#core.listNamespacedPod({ ...page, namespace });
        for (const pod of list.items) items.push(withoutManagedFields(pod));
        resourceVersion = list.metadata?.resourceVersion ?? "";
        token = list.metadata?._continue === undefined || list.metadata._continue === "" ? undefined : list.metadata._continue;
      } while (token !== undefined);
    } catch (error) {
      throw toStoreError(error, `pod list${namespace === undefined ? "" : ` in ${namespace}`}`);
    }
    return { items, resourceVersion: resourceVersion ?? "" };
  }

  /** An informer of every pod odop made, in the configured namespace or all of them. */
  informer(): Informer<V1Pod> {
    const namespace = this.#options.namespace;
    const path = namespace === undefined ? "/api/v1/pods" : `/api/v1/namespaces/${namespace}/pods`;
    return new Informer<V1Pod>({
      list: () => this.list(namespace),
      watch: async (resourceVersion, onEvent, done) => {
        const controller = await this.#watch.watch(path, { labelSelector: MANAGED_SELECTOR, resourceVersion, allowWatchBookmarks: true }, onEvent, done);
        return { abort: () => controller.abort() };
      },
      decode: (raw) => withoutManagedFields(raw as V1Pod),
      keyOf: podKeyOf,
      versionOf: (pod) => pod.metadata?.resourceVersion,
      log: this.#options.log.child({ kind: "Pod", ...(namespace === undefined ? {} : { namespace }) }),
      ...(this.#options.watchBackoff === undefined ? {} : { backoff: this.#options.watchBackoff }),
    });
  }
}

export function podKeyOf(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name ?? ""}`;
}
