/**
 * The Kubernetes store: odop's resources as custom objects of odop.io/v1alpha1 on an
 * API server, through @kubernetes/client-node.
 *
 * Decisions:
 * - get and list read the API server, not the informer cache: the contract promises
 *   read-your-writes (a get right after a create sees it), and a cache that lags by a
 *   watch event would break level-based reconcilers that re-read after writing. The
 *   cache serves the watch only (the relist diff and the ADDED replay for new handlers).
 * - `update` is a PUT of the main resource (the API server ignores status there);
 *   `updateStatus` a PUT of the status subresource (it ignores everything but status).
 *   Both send the object's resourceVersion as is, so a stale write gets 409 from the
 *   server; an object without one is written unconditionally.
 * - Objects from the server are checked against the kind's schema. One that fails is
 *   still returned (the reconciler reports InvalidSpec on it) and logged at debug.
 * - One informer per kind, shared by all handlers; it stops when its last handler
 *   unsubscribes and a later watch starts a fresh one.
 * - With `namespace`, namespaced kinds are listed and watched in that namespace only;
 *   OpNodes are cluster-scoped and always cluster-wide.
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { kindDefinition } from "../api/kinds.ts";
import { API_VERSION, GROUP, VERSION } from "../api/meta.ts";
import { validateObject } from "../api/validate.ts";
import { InvalidError, NotFoundError } from "./errors.ts";
import { toStoreError } from "./kubernetes-errors.ts";
import { KubernetesEvents } from "./kubernetes-events.ts";
import { type BackoffOptions, Informer, type ListResult, withoutManagedFields } from "./kubernetes-informer.ts";
import {
  type AnyObject,
  type EventRecord,
  type EventType,
  keyOf,
  type KindName,
  type ObjectOf,
  type ObjectRef,
  type Store,
  type Unsubscribe,
  type WatchEvent,
} from "./types.ts";

export type KubernetesStoreOptions = {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Watch and list namespaced kinds in this namespace only; all namespaces when absent. */
  namespace?: string | undefined;
  /** Reconnect backoff of the watches (defaults: 500 ms doubling to 30 s, with jitter). */
  watchBackoff?: BackoffOptions;
  /** Page size of lists (default 500). */
  pageSize?: number;
};

type Scope = { plural: string; namespaced: boolean };

export class KubernetesStore implements Store {
  readonly #api: CustomObjectsApi;
  readonly #watch: Watch;
  readonly #log: Logger;
  readonly #namespace: string | undefined;
  readonly #backoff: BackoffOptions | undefined;
  readonly #pageSize: number;
  readonly #events: KubernetesEvents;
  readonly #informers = new Map<KindName, Informer<AnyObject>>();
  #closed = false;

  constructor(options: KubernetesStoreOptions) {
    this.#api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#watch = new Watch(options.kubeConfig);
    this.#log = options.log;
    this.#namespace = options.namespace;
    this.#backoff = options.watchBackoff;
    this.#pageSize = options.pageSize ?? 500;
    this.#events = new KubernetesEvents({
      core: options.kubeConfig.makeApiClient(CoreV1Api),
      defaultNamespace: options.namespace ?? "default",
      watchNamespace: options.namespace,
    });
  }

  async get<K extends KindName>(kind: K, namespace: string | undefined, name: string): Promise<ObjectOf<K> | undefined> {
    const { plural, namespaced } = scopeOf(kind);
    const ns = this.#ns(kind, namespace);
    try {
      const raw: unknown = namespaced
        ? await this.#api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns ?? "", plural, name })
        : await this.#api.getClusterCustomObject({ group: GROUP, version: VERSION, plural, name });
      return this.#decode(raw) as ObjectOf<K>;
    } catch (error) {
      const mapped = toStoreError(error, describe(kind, ns, name));
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  async list<K extends KindName>(kind: K, namespace?: string): Promise<ObjectOf<K>[]> {
    const ns = scopeOf(kind).namespaced ? (namespace ?? this.#namespace) : undefined;
    const { items } = await this.#list(kind, ns);
    return items as ObjectOf<K>[];
  }

  async create<T extends AnyObject>(object: T): Promise<T> {
    const { plural, namespaced } = scopeOf(object.kind);
    const body = structuredClone(object) as AnyObject;
    body.apiVersion = API_VERSION;
    const meta = body.metadata;
    if (meta.name === undefined && meta.generateName === undefined) {
      throw new InvalidError(object.kind, [{ path: ["metadata", "name"], message: "required" }]);
    }
    const ns = this.#ns(object.kind, meta.namespace);
    if (ns === undefined) delete meta.namespace;
    else meta.namespace = ns;
    // Fields the server owns; it refuses a create that carries a resourceVersion.
    delete meta.resourceVersion;
    delete meta.uid;
    delete meta.creationTimestamp;
    delete meta.deletionTimestamp;
    delete meta.generation;
    delete meta.managedFields;
    try {
      const raw: unknown = namespaced
        ? await this.#api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns ?? "", plural, body })
        : await this.#api.createClusterCustomObject({ group: GROUP, version: VERSION, plural, body });
      return this.#decode(raw) as T;
    } catch (error) {
      throw toStoreError(error, describe(object.kind, ns, meta.name ?? `${meta.generateName ?? ""}*`));
    }
  }

  async update<T extends AnyObject>(object: T): Promise<T> {
    return this.#replace(object, false);
  }

  async updateStatus<T extends AnyObject>(object: T): Promise<T> {
    return this.#replace(object, true);
  }

  async delete(kind: KindName, namespace: string | undefined, name: string): Promise<void> {
    const { plural, namespaced } = scopeOf(kind);
    const ns = this.#ns(kind, namespace);
    try {
      if (namespaced) {
        await this.#api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns ?? "", plural, name });
      } else {
        await this.#api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural, name });
      }
    } catch (error) {
      throw toStoreError(error, describe(kind, ns, name));
    }
  }

  watch<K extends KindName>(kind: K, handler: (event: WatchEvent<ObjectOf<K>>) => void): Unsubscribe {
    if (this.#closed) throw new Error("KubernetesStore is closed");
    let informer = this.#informers.get(kind);
    if (informer === undefined || informer.stopped) {
      informer = this.#informer(kind);
      this.#informers.set(kind, informer);
    }
    const current = informer;
    const unsubscribe = current.subscribe(handler as (event: WatchEvent<AnyObject>) => void);
    return () => {
      unsubscribe();
      if (current.size === 0 && this.#informers.get(kind) === current) {
        this.#informers.delete(kind);
        current.stop().catch((error: unknown) => this.#log.error({ err: error, kind }, "informer did not stop"));
      }
    };
  }

  recordEvent(involved: ObjectRef, type: EventType, reason: string, message: string): Promise<void> {
    return this.#events.record(involved, type, reason, message);
  }

  events(involved?: ObjectRef): Promise<EventRecord[]> {
    return this.#events.list(involved);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const informers = [...this.#informers.values()];
    this.#informers.clear();
    await Promise.all(informers.map((i) => i.stop()));
  }

  // ------------------------------------------------------------------- internals

  #ns(kind: KindName, namespace: string | undefined): string | undefined {
    return scopeOf(kind).namespaced ? (namespace ?? this.#namespace ?? "default") : undefined;
  }

  async #replace<T extends AnyObject>(object: T, status: boolean): Promise<T> {
    const { plural, namespaced } = scopeOf(object.kind);
    const name = object.metadata.name;
    if (name === undefined) throw new InvalidError(object.kind, [{ path: ["metadata", "name"], message: "required" }]);
    const ns = this.#ns(object.kind, object.metadata.namespace);
    const body = structuredClone(object) as AnyObject;
    body.apiVersion = API_VERSION;
    if (ns !== undefined) body.metadata.namespace = ns;
    const request = { group: GROUP, version: VERSION, plural, name, body };
    try {
      let raw: unknown;
      if (namespaced && status) raw = await this.#api.replaceNamespacedCustomObjectStatus({ ...request, namespace: ns ?? "" });
      else if (namespaced) raw = await this.#api.replaceNamespacedCustomObject({ ...request, namespace: ns ?? "" });
      else if (status) raw = await this.#api.replaceClusterCustomObjectStatus(request);
      else raw = await this.#api.replaceClusterCustomObject(request);
      return this.#decode(raw) as T;
    } catch (error) {
      throw toStoreError(error, describe(object.kind, ns, name));
    }
  }

  /** Every page of a list, and the resourceVersion to watch from. */
  async #list(kind: KindName, namespace: string | undefined): Promise<ListResult<AnyObject>> {
    const { plural } = scopeOf(kind);
    const items: AnyObject[] = [];
    let token: string | undefined;
    let resourceVersion: string;
    try {
      do {
        const page = { group: GROUP, version: VERSION, plural, limit: this.#pageSize, ...(token === undefined ? {} : { _continue: token }) };
        const raw: unknown =
          namespace === undefined
            ? await this.#api.listClusterCustomObject(page)
            : await this.#api.listNamespacedCustomObject({ ...page, namespace });
        const list = (raw ?? {}) as { items?: unknown[]; metadata?: { resourceVersion?: string; continue?: string } };
        for (const item of list.items ?? []) items.push(this.#decode(withKind(item, kind)));
        resourceVersion = list.metadata?.resourceVersion ?? "";
        token = list.metadata?.continue === "" ? undefined : list.metadata?.continue;
      } while (token !== undefined);
    } catch (error) {
      throw toStoreError(error, `${kind} list${namespace === undefined ? "" : ` in ${namespace}`}`);
    }
    return { items, resourceVersion };
  }

  #informer(kind: KindName): Informer<AnyObject> {
    const { plural, namespaced } = scopeOf(kind);
    const namespace = namespaced ? this.#namespace : undefined;
    const path = `/apis/${GROUP}/${VERSION}${namespace === undefined ? "" : `/namespaces/${namespace}`}/${plural}`;
    const log = this.#log.child({ kind, ...(namespace === undefined ? {} : { namespace }) });
    return new Informer<AnyObject>({
      list: () => this.#list(kind, namespace),
      watch: async (resourceVersion, onEvent, done) => {
        const controller = await this.#watch.watch(
          path,
          { resourceVersion, allowWatchBookmarks: true },
          (type: string, object: unknown) => onEvent(type, type === "ERROR" ? object : withKind(object, kind)),
          done,
        );
        return { abort: () => controller.abort() };
      },
      decode: (raw) => this.#decode(raw),
      keyOf: (o) => keyOf(o.kind, o.metadata.namespace, o.metadata.name ?? ""),
      versionOf: (o) => o.metadata.resourceVersion,
      log,
      ...(this.#backoff === undefined ? {} : { backoff: this.#backoff }),
    });
  }

  /** The typed object; one that breaks the schema is returned as it is, and logged. */
  #decode(raw: unknown): AnyObject {
    const result = validateObject(withoutManagedFields(raw));
    if (result.ok) return result.object;
    const meta = (raw as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
    this.#log.debug({ kind: result.kind, namespace: meta?.namespace, name: result.name, problems: result.problems }, "object from the API server does not match its schema");
    return raw as AnyObject;
  }
}

function scopeOf(kind: KindName): Scope {
  const def = kindDefinition(kind);
  if (def === undefined) throw new Error(`unknown kind ${kind}`);
  return { plural: def.plural, namespaced: def.scope === "Namespaced" };
}

function describe(kind: KindName, namespace: string | undefined, name: string): string {
  return `${kind} ${namespace === undefined ? "" : `${namespace}/`}${name}`;
}

/** Items of a list, and some watch events, come without apiVersion and kind. */
function withKind(raw: unknown, kind: KindName): unknown {
  if (typeof raw !== "object" || raw === null) return raw;
  const record = raw as Record<string, unknown>;
  if (record["kind"] === undefined || record["apiVersion"] === undefined) return { apiVersion: API_VERSION, kind, ...record };
  return raw;
}
