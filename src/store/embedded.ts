/**
 * The embedded store: the API server's semantics in one process, for `odop run` on a
 * machine with no cluster. Objects live in memory and every acknowledged change is in
 * the journal (journal.ts) when the call returns, so a killed run resumes exactly.
 * Objects are validated with the same schemas the CRDs are generated from.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { validateObject } from "../api/validate.ts";
import { AlreadyExistsError, ConflictError, InvalidError, NotFoundError, StoreError } from "./errors.ts";
import { Journal, type JournalEntry } from "./journal.ts";
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

export type EmbeddedStoreOptions = {
  /** Folder of the journal; without it the store is memory only (tests). */
  folder?: string;
  now?: () => Date;
  /** Events kept per object; older ones are dropped. */
  eventsPerObject?: number;
  /** Journal entries after which the journal is folded into the snapshot. */
  compactEvery?: number;
  /**
   * Load the folder and never write to it: for reading the state of a run while no
   * `odop run` owns it (writes throw).
   */
  readOnly?: boolean;
};

type Handler = (event: WatchEvent<AnyObject>) => void;

const NAMESPACED: Record<KindName, boolean> = { OpTask: true, OpExecution: true, OpNode: false };

export class EmbeddedStore implements Store {
  readonly #objects = new Map<string, AnyObject>();
  readonly #events = new Map<string, EventRecord[]>();
  readonly #handlers = new Map<KindName, Set<Handler>>();
  readonly #journal: Journal | undefined;
  readonly #now: () => Date;
  readonly #eventsPerObject: number;
  readonly #compactEvery: number;
  readonly #readOnly: boolean;
  #version = 0;
  /** Deliveries to watchers, in order, after the call that caused them has returned. */
  #deliveries: Promise<void> = Promise.resolve();

  constructor(options: EmbeddedStoreOptions = {}) {
    this.#now = options.now ?? (() => new Date());
    this.#eventsPerObject = options.eventsPerObject ?? 50;
    this.#compactEvery = options.compactEvery ?? 10_000;
    this.#readOnly = options.readOnly ?? false;
    if (options.folder !== undefined) {
      const journal = new Journal(options.folder);
      journal.load((entry) => this.#replay(entry));
      if (!this.#readOnly) {
        this.#journal = journal;
        this.#compact();
      }
    }
  }

  async get<K extends KindName>(kind: K, namespace: string | undefined, name: string): Promise<ObjectOf<K> | undefined> {
    await Promise.resolve();
    const object = this.#objects.get(keyOf(kind, this.#ns(kind, namespace), name));
    return object === undefined ? undefined : (structuredClone(object) as ObjectOf<K>);
  }

  async list<K extends KindName>(kind: K, namespace?: string): Promise<ObjectOf<K>[]> {
    await Promise.resolve();
    const out: ObjectOf<K>[] = [];
    for (const object of this.#objects.values()) {
      if (object.kind !== kind) continue;
      if (namespace !== undefined && object.metadata.namespace !== namespace) continue;
      out.push(structuredClone(object) as ObjectOf<K>);
    }
    return out;
  }

  async create<T extends AnyObject>(input: T): Promise<T> {
    await Promise.resolve();
    const object = structuredClone(input) as AnyObject;
    const meta = object.metadata;
    if (meta.name === undefined) {
      if (meta.generateName === undefined) throw new InvalidError(object.kind, [{ path: ["metadata", "name"], message: "required" }]);
      meta.name = `${meta.generateName}${randomBytes(4).toString("hex").slice(0, 5)}`;
    }
    meta.namespace = this.#ns(object.kind, meta.namespace);
    const key = keyOf(object.kind, meta.namespace, meta.name);
    if (this.#objects.has(key)) throw new AlreadyExistsError(`${object.kind} ${this.#display(key)} already exists`);
    meta.uid = randomUUID();
    meta.generation = 1;
    meta.creationTimestamp = this.#timestamp();
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    const valid = this.#validate(object);
    this.#put(key, valid, "ADDED");
    return structuredClone(valid) as T;
  }

  async update<T extends AnyObject>(input: T): Promise<T> {
    await Promise.resolve();
    const { key, current } = this.#current(input);
    const next = structuredClone(input) as AnyObject;
    // The status subresource: a main-resource update never changes status.
    if (current.status === undefined) delete next.status;
    else (next as { status: unknown }).status = structuredClone(current.status);
    const meta = next.metadata;
    // Fields the server owns.
    meta.uid = current.metadata.uid;
    meta.creationTimestamp = current.metadata.creationTimestamp;
    meta.namespace = current.metadata.namespace;
    if (current.metadata.deletionTimestamp === undefined) delete meta.deletionTimestamp;
    else meta.deletionTimestamp = current.metadata.deletionTimestamp;
    const specChanged = JSON.stringify(current.spec) !== JSON.stringify(next.spec);
    meta.generation = (current.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    const valid = this.#validate(next);
    if (meta.deletionTimestamp !== undefined && (meta.finalizers ?? []).length === 0) {
      this.#remove(key, valid);
      return structuredClone(valid) as T;
    }
    if (JSON.stringify(stripVersion(current)) === JSON.stringify(stripVersion(valid))) return structuredClone(current) as T;
    this.#put(key, valid, "MODIFIED");
    return structuredClone(valid) as T;
  }

  async updateStatus<T extends AnyObject>(input: T): Promise<T> {
    await Promise.resolve();
    const { key, current } = this.#current(input);
    const next = structuredClone(current);
    if (input.status === undefined) delete next.status;
    else (next as { status: unknown }).status = structuredClone(input.status);
    const valid = this.#validate(next);
    if (JSON.stringify(current.status) === JSON.stringify(valid.status)) return structuredClone(current) as T;
    this.#put(key, valid, "MODIFIED");
    return structuredClone(valid) as T;
  }

  async delete(kind: KindName, namespace: string | undefined, name: string): Promise<void> {
    await Promise.resolve();
    const key = keyOf(kind, this.#ns(kind, namespace), name);
    const current = this.#objects.get(key);
    if (current === undefined) throw new NotFoundError(`${kind} ${this.#display(key)} not found`);
    if ((current.metadata.finalizers ?? []).length > 0) {
      if (current.metadata.deletionTimestamp !== undefined) return;
      const next = structuredClone(current);
      next.metadata.deletionTimestamp = this.#timestamp();
      this.#put(key, next, "MODIFIED");
      return;
    }
    this.#remove(key, current);
  }

  watch<K extends KindName>(kind: K, handler: (event: WatchEvent<ObjectOf<K>>) => void): Unsubscribe {
    const h = handler as Handler;
    let handlers = this.#handlers.get(kind);
    if (handlers === undefined) this.#handlers.set(kind, (handlers = new Set()));
    handlers.add(h);
    const existing = [...this.#objects.values()].filter((o) => o.kind === kind).map((o) => structuredClone(o));
    this.#deliver(() => {
      for (const object of existing) if (handlers.has(h)) h({ type: "ADDED", object });
    });
    return () => handlers.delete(h);
  }

  async recordEvent(involved: ObjectRef, type: EventType, reason: string, message: string): Promise<void> {
    await Promise.resolve();
    const key = keyOf(involved.kind, this.#ns(involved.kind, involved.namespace), involved.name);
    const list = this.#events.get(key) ?? [];
    const now = this.#timestamp();
    const last = list.at(-1);
    const event: EventRecord =
      last !== undefined && last.reason === reason && last.message === message && last.type === type
        ? { ...last, count: last.count + 1, lastTimestamp: now }
        : { involved: { ...involved }, type, reason, message, firstTimestamp: now, lastTimestamp: now, count: 1 };
    this.#applyEvent(event);
    this.#write({ t: "ev", e: event });
  }

  async events(involved?: ObjectRef): Promise<EventRecord[]> {
    await Promise.resolve();
    if (involved === undefined) return [...this.#events.values()].flat().map((e) => structuredClone(e));
    const key = keyOf(involved.kind, this.#ns(involved.kind, involved.namespace), involved.name);
    return (this.#events.get(key) ?? []).map((e) => structuredClone(e));
  }

  async close(): Promise<void> {
    await this.#deliveries;
    this.#journal?.close();
  }

  // ------------------------------------------------------------------- internals

  #ns(kind: KindName, namespace: string | undefined): string | undefined {
    return NAMESPACED[kind] ? (namespace ?? "default") : undefined;
  }

  #display(key: string): string {
    return key.slice(key.indexOf("/") + 1).replace(/^\//, "");
  }

  #timestamp(): string {
    return this.#now().toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  #current(input: AnyObject): { key: string; current: AnyObject } {
    const name = input.metadata.name;
    if (name === undefined) throw new InvalidError(input.kind, [{ path: ["metadata", "name"], message: "required" }]);
    const key = keyOf(input.kind, this.#ns(input.kind, input.metadata.namespace), name);
    const current = this.#objects.get(key);
    if (current === undefined) throw new NotFoundError(`${input.kind} ${this.#display(key)} not found`);
    const rv = input.metadata.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) {
      throw new ConflictError(`${input.kind} ${this.#display(key)} was modified (resourceVersion ${rv} is not current); read it again and retry`);
    }
    return { key, current };
  }

  #validate(object: AnyObject): AnyObject {
    const result = validateObject(object);
    if (!result.ok) throw new InvalidError(`${object.kind} ${object.metadata.name ?? ""}`, result.problems);
    return result.object;
  }

  #put(key: string, object: AnyObject, type: "ADDED" | "MODIFIED"): void {
    this.#version += 1;
    object.metadata.resourceVersion = String(this.#version);
    this.#write({ t: "put", o: object });
    this.#objects.set(key, object);
    this.#notify(type, object);
  }

  #remove(key: string, object: AnyObject): void {
    this.#write({ t: "del", k: key });
    this.#objects.delete(key);
    this.#events.delete(key);
    this.#notify("DELETED", object);
  }

  #notify(type: WatchEvent<AnyObject>["type"], object: AnyObject): void {
    const handlers = [...(this.#handlers.get(object.kind) ?? [])];
    if (handlers.length === 0) return;
    const copy = structuredClone(object);
    this.#deliver(() => {
      for (const h of handlers) h({ type, object: structuredClone(copy) });
    });
  }

  #deliver(fn: () => void): void {
    this.#deliveries = this.#deliveries.then(fn);
  }

  #applyEvent(event: EventRecord): void {
    const key = keyOf(event.involved.kind, event.involved.namespace, event.involved.name);
    const list = this.#events.get(key) ?? [];
    const last = list.at(-1);
    if (last !== undefined && last.firstTimestamp === event.firstTimestamp && last.reason === event.reason && last.message === event.message) {
      list[list.length - 1] = event;
    } else {
      list.push(event);
    }
    if (list.length > this.#eventsPerObject) list.splice(0, list.length - this.#eventsPerObject);
    this.#events.set(key, list);
  }

  #replay(entry: JournalEntry): void {
    if (entry.t === "put") {
      const o = entry.o;
      this.#objects.set(keyOf(o.kind, o.metadata.namespace, o.metadata.name ?? ""), o);
      this.#version = Math.max(this.#version, Number(o.metadata.resourceVersion ?? 0));
    } else if (entry.t === "del") {
      this.#objects.delete(entry.k);
      this.#events.delete(entry.k);
    } else {
      this.#applyEvent(entry.e);
    }
  }

  #write(entry: JournalEntry): void {
    if (this.#readOnly) throw new StoreError("this store was opened read-only: an odop run owns it");
    if (this.#journal === undefined) return;
    if (this.#journal.append(entry) >= this.#compactEvery) this.#compact();
  }

  #compact(): void {
    this.#journal?.compact({ objects: [...this.#objects.values()], events: [...this.#events.values()].flat() });
  }
}

function stripVersion(object: AnyObject): AnyObject {
  const copy = structuredClone(object);
  delete copy.metadata.resourceVersion;
  return copy;
}
