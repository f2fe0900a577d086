/**
 * The one interface through which the controller reads and writes odop's resources.
 * Two implementations keep the same contract (test/store/contract.ts checks both):
 * the embedded store (memory, journalled under $ODOP_PATH) and the Kubernetes store.
 *
 * Contract, as the Kubernetes API server defines it:
 * - Objects handed in and out are copies; mutating one changes nothing in the store.
 * - `resourceVersion` is opaque: compare it for equality only.
 * - `update` writes metadata and spec (status is ignored) and bumps `generation` when
 *   the spec changed; `updateStatus` writes status only. Both fail with ConflictError
 *   when the object carries a resourceVersion that is not the current one.
 * - `delete` of an object with finalizers sets `deletionTimestamp`; the object goes
 *   when an update removes its last finalizer.
 * - `watch` first delivers ADDED for every existing object, then every change, in
 *   order, asynchronously.
 */
import type { OpExecution } from "../api/opexecution.ts";
import type { OpNode } from "../api/opnode.ts";
import type { OpTask } from "../api/optask.ts";

export type KindName = "OpTask" | "OpExecution" | "OpNode";

export type ObjectOf<K extends KindName> = K extends "OpTask" ? OpTask : K extends "OpExecution" ? OpExecution : OpNode;
export type AnyObject = OpTask | OpExecution | OpNode;

export type WatchEvent<T> = { type: "ADDED" | "MODIFIED" | "DELETED"; object: T };
export type Unsubscribe = () => void;

/** What an Event is about. */
export type ObjectRef = { kind: KindName; namespace?: string | undefined; name: string; uid?: string | undefined };

export type EventType = "Normal" | "Warning";

/** A Kubernetes-style Event: what happened to an object, and why (a CamelCase reason). */
export type EventRecord = {
  involved: ObjectRef;
  type: EventType;
  reason: string;
  message: string;
  /** RFC 3339. */
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
};

export interface Store {
  get<K extends KindName>(kind: K, namespace: string | undefined, name: string): Promise<ObjectOf<K> | undefined>;
  list<K extends KindName>(kind: K, namespace?: string): Promise<ObjectOf<K>[]>;
  create<T extends AnyObject>(object: T): Promise<T>;
  update<T extends AnyObject>(object: T): Promise<T>;
  updateStatus<T extends AnyObject>(object: T): Promise<T>;
  delete(kind: KindName, namespace: string | undefined, name: string): Promise<void>;
  watch<K extends KindName>(kind: K, handler: (event: WatchEvent<ObjectOf<K>>) => void): Unsubscribe;
  /** Records an Event; repeats of the same reason and message on the same object are counted, not stored again. */
  recordEvent(involved: ObjectRef, type: EventType, reason: string, message: string): Promise<void>;
  events(involved?: ObjectRef): Promise<EventRecord[]>;
  close(): Promise<void>;
}

/** "OpTask/ns/name"; cluster-scoped objects have an empty namespace. */
export function keyOf(kind: KindName, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ""}/${name}`;
}

export function refOf(object: AnyObject): ObjectRef {
  return { kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name ?? "", uid: object.metadata.uid };
}
