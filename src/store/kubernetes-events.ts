/**
 * Events as core/v1 Events, the kind `kubectl describe` and `kubectl get events` show.
 *
 * Contract:
 * - An Event lives in the involved object's namespace; cluster-scoped objects (OpNode)
 *   get theirs in "default", as the kubelet does for Nodes.
 * - `source.component` and `reportingComponent` are "odop"; the reason is made
 *   CamelCase ("invalid spec" → "InvalidSpec") and the message is cut to 1024 chars.
 * - A repeat of the same (object, type, reason, message) recorded by this process is
 *   folded into the Event already written: its count and lastTimestamp are patched.
 *   When that Event is gone (the API server expires Events after an hour) a new one is
 *   created. Repeats are remembered for the last MAX_REMEMBERED distinct events only.
 * - `list` reads them back with a field selector on involvedObject, oldest first.
 */
import { hostname } from "node:os";
import type { CoreV1Api, CoreV1Event } from "@kubernetes/client-node";
import { API_VERSION } from "../api/meta.ts";
import { NotFoundError } from "./errors.ts";
import { toStoreError } from "./kubernetes-errors.ts";
import type { EventRecord, EventType, KindName, ObjectRef } from "./types.ts";

export const EVENT_COMPONENT = "odop";
export const MAX_MESSAGE = 1024;
const MAX_REMEMBERED = 4096;
const KINDS: readonly KindName[] = ["OpTask", "OpExecution", "OpNode"];

type Written = { namespace: string; name: string; count: number };

export type KubernetesEventsOptions = {
  core: CoreV1Api;
  /** Namespace of namespaced objects that name none. */
  defaultNamespace: string;
  /** Namespace to list in when no object is given; undefined: all namespaces. */
  watchNamespace: string | undefined;
  now?: () => Date;
};

export class KubernetesEvents {
  readonly #core: CoreV1Api;
  readonly #defaultNamespace: string;
  readonly #watchNamespace: string | undefined;
  readonly #now: () => Date;
  readonly #instance = hostname();
  /** Identity of an event → the Event written for it, in insertion order (oldest first). */
  readonly #written = new Map<string, Written>();
  /** One write at a time per identity, so that two repeats never both create. */
  readonly #pending = new Map<string, Promise<void>>();
  #sequence = 0;

  constructor(options: KubernetesEventsOptions) {
    this.#core = options.core;
    this.#defaultNamespace = options.defaultNamespace;
    this.#watchNamespace = options.watchNamespace;
    this.#now = options.now ?? (() => new Date());
  }

  async record(involved: ObjectRef, type: EventType, reason: string, message: string): Promise<void> {
    const objectNamespace = this.#objectNamespace(involved);
    const camel = camelCaseReason(reason);
    const text = truncate(message, MAX_MESSAGE);
    const identity = JSON.stringify([involved.kind, objectNamespace ?? "", involved.name, involved.uid ?? "", type, camel, text]);
    const previous = this.#pending.get(identity) ?? Promise.resolve();
    const next = previous.then(() => this.#write(identity, involved, objectNamespace, type, camel, text));
    const settled = next.catch(() => undefined);
    this.#pending.set(identity, settled);
    void settled.then(() => {
      if (this.#pending.get(identity) === settled) this.#pending.delete(identity);
    });
    await next;
  }

  async list(involved?: ObjectRef): Promise<EventRecord[]> {
    const selector = [`involvedObject.apiVersion=${API_VERSION}`];
    let namespace = this.#watchNamespace;
    if (involved !== undefined) {
      const objectNamespace = this.#objectNamespace(involved);
      namespace = objectNamespace ?? "default";
      selector.push(`involvedObject.kind=${involved.kind}`, `involvedObject.name=${involved.name}`);
      if (objectNamespace !== undefined) selector.push(`involvedObject.namespace=${objectNamespace}`);
    }
    const fieldSelector = selector.join(",");
    const what = `Events of ${involved === undefined ? "odop objects" : `${involved.kind} ${involved.name}`}`;
    try {
      const list =
        namespace === undefined
          ? await this.#core.listEventForAllNamespaces({ fieldSelector })
          : await this.#core.listNamespacedEvent({ namespace, fieldSelector });
      return list.items
        .map((event) => toRecord(event))
        .filter((record): record is EventRecord => record !== undefined)
        .sort((a, b) => (a.firstTimestamp === b.firstTimestamp ? 0 : a.firstTimestamp < b.firstTimestamp ? -1 : 1));
    } catch (error) {
      throw toStoreError(error, what);
    }
  }

  async #write(identity: string, involved: ObjectRef, objectNamespace: string | undefined, type: EventType, reason: string, message: string): Promise<void> {
    const now = this.#now();
    const seen = this.#written.get(identity);
    if (seen !== undefined) {
      try {
        await this.#core.patchNamespacedEvent({
          namespace: seen.namespace,
          name: seen.name,
          body: [
            { op: "replace", path: "/count", value: seen.count + 1 },
            { op: "replace", path: "/lastTimestamp", value: rfc3339(now) },
          ],
        });
        seen.count += 1;
        return;
      } catch (error) {
        const mapped = toStoreError(error, `Event ${seen.namespace}/${seen.name}`);
        if (!(mapped instanceof NotFoundError)) throw mapped;
        this.#written.delete(identity);
      }
    }
    const namespace = objectNamespace ?? "default";
    const name = eventName(involved.name, now, this.#sequence++);
    const event: CoreV1Event = {
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: involved.kind,
        name: involved.name,
        ...(objectNamespace === undefined ? {} : { namespace: objectNamespace }),
        ...(involved.uid === undefined ? {} : { uid: involved.uid }),
      },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: EVENT_COMPONENT, host: this.#instance },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.#instance,
    };
    try {
      await this.#core.createNamespacedEvent({ namespace, body: event });
    } catch (error) {
      throw toStoreError(error, `Event ${namespace}/${name}`);
    }
    this.#written.set(identity, { namespace, name, count: 1 });
    if (this.#written.size > MAX_REMEMBERED) {
      const oldest = this.#written.keys().next();
      if (oldest.done !== true) this.#written.delete(oldest.value);
    }
  }

  #objectNamespace(involved: ObjectRef): string | undefined {
    return involved.kind === "OpNode" ? undefined : (involved.namespace ?? this.#defaultNamespace);
  }
}

/** "invalid spec" → "InvalidSpec"; "InvalidSpec" is kept; at most 128 characters. */
export function camelCaseReason(reason: string): string {
  if (/^[A-Z][A-Za-z0-9]*$/.test(reason)) return reason.slice(0, 128);
  const camel = reason
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part !== "")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
  const start = /^[A-Za-z]/.test(camel) ? camel : `Reason${camel}`;
  return camel === "" ? "Unknown" : start.slice(0, 128);
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** `<object>.<hex time><hex sequence>`, like the names client-go gives; a valid DNS subdomain. */
function eventName(objectName: string, now: Date, sequence: number): string {
  const suffix = `${now.getTime().toString(16)}${(sequence % 0x10000).toString(16).padStart(4, "0")}`;
  return `${objectName.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function toRecord(event: CoreV1Event): EventRecord | undefined {
  const kind = KINDS.find((k) => k === event.involvedObject.kind);
  if (kind === undefined) return undefined;
  const first = event.firstTimestamp ?? event.eventTime ?? event.metadata.creationTimestamp;
  const last = event.lastTimestamp ?? first;
  return {
    involved: { kind, namespace: event.involvedObject.namespace, name: event.involvedObject.name ?? "", uid: event.involvedObject.uid },
    type: event.type === "Warning" ? "Warning" : "Normal",
    reason: event.reason ?? "",
    message: event.message ?? "",
    firstTimestamp: first === undefined ? "" : rfc3339(new Date(first)),
    lastTimestamp: last === undefined ? "" : rfc3339(new Date(last)),
    count: event.count ?? 1,
  };
}
