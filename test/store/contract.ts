/**
 * The store contract (src/store/types.ts), as a suite any implementation must pass:
 * the embedded store always, the Kubernetes store whenever a cluster is reachable.
 */
import { describe, expect, it } from "vitest";
import type { OpTask } from "../../src/api/optask.ts";
import { AlreadyExistsError, ConflictError, InvalidError, NotFoundError } from "../../src/store/errors.ts";
import type { Store, WatchEvent } from "../../src/store/types.ts";

export type StoreFactory = { name: string; make: () => Promise<{ store: Store; namespace: string; cleanup: () => Promise<void> }> };

function newTask(namespace: string, name: string): OpTask {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name, namespace },
    spec: {
      trigger: { manual: {} },
      run: { command: ["true"] },
      policy: { priority: 0, onContention: "pause", concurrency: 1 },
      suspend: false,
    },
  };
}

async function until<T>(get: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function storeContract(factory: StoreFactory): void {
  describe(`store contract: ${factory.name}`, () => {
    const withStore = async (body: (store: Store, ns: string) => Promise<void>) => {
      const { store, namespace, cleanup } = await factory.make();
      try {
        await body(store, namespace);
      } finally {
        await cleanup();
      }
    };

    it("creates, gets and lists; the server owns uid, generation and resourceVersion", () =>
      withStore(async (store, ns) => {
        const created = await store.create(newTask(ns, "a"));
        expect(created.metadata.uid).toMatch(/.+/);
        expect(created.metadata.resourceVersion).toMatch(/.+/);
        expect(created.metadata.generation).toBe(1);
        expect(created.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
        const got = await store.get("OpTask", ns, "a");
        expect(got?.metadata.uid).toBe(created.metadata.uid);
        expect((await store.list("OpTask", ns)).map((t) => t.metadata.name)).toEqual(["a"]);
        expect(await store.get("OpTask", ns, "missing")).toBeUndefined();
      }));

    it("refuses a taken name and an invalid object", () =>
      withStore(async (store, ns) => {
        await store.create(newTask(ns, "a"));
        await expect(store.create(newTask(ns, "a"))).rejects.toBeInstanceOf(AlreadyExistsError);
        const bad = newTask(ns, "b");
        bad.spec.requirements = { cpu: { min: 4, max: 2 }, ioBound: false };
        await expect(store.create(bad)).rejects.toBeInstanceOf(InvalidError);
      }));

    it("returns copies: mutating a result changes nothing stored", () =>
      withStore(async (store, ns) => {
        const created = await store.create(newTask(ns, "a"));
        created.spec.suspend = true;
        expect((await store.get("OpTask", ns, "a"))?.spec.suspend).toBe(false);
      }));

    it("update bumps generation on spec changes only, and never writes status", () =>
      withStore(async (store, ns) => {
        const created = await store.create(newTask(ns, "a"));
        const labelled = await store.update({ ...created, metadata: { ...created.metadata, labels: { team: "x" } } });
        expect(labelled.metadata.generation).toBe(1);
        const suspended = await store.update({ ...labelled, spec: { ...labelled.spec, suspend: true }, status: { runs: 5 } });
        expect(suspended.metadata.generation).toBe(2);
        expect(suspended.status?.runs).toBeUndefined();
      }));

    it("updateStatus writes status only", () =>
      withStore(async (store, ns) => {
        const created = await store.create(newTask(ns, "a"));
        const updated = await store.updateStatus({ ...created, spec: { ...created.spec, suspend: true }, status: { runs: 3 } });
        expect(updated.status?.runs).toBe(3);
        expect(updated.spec.suspend).toBe(false);
        expect(updated.metadata.generation).toBe(1);
      }));

    it("refuses a write from a stale read with a conflict", () =>
      withStore(async (store, ns) => {
        const created = await store.create(newTask(ns, "a"));
        await store.updateStatus({ ...created, status: { runs: 1 } });
        await expect(store.updateStatus({ ...created, status: { runs: 2 } })).rejects.toBeInstanceOf(ConflictError);
        await expect(store.update({ ...created, spec: { ...created.spec, suspend: true } })).rejects.toBeInstanceOf(ConflictError);
        const fresh = await store.get("OpTask", ns, "a");
        expect((await store.updateStatus({ ...fresh!, status: { runs: 2 } })).status?.runs).toBe(2);
      }));

    it("deletes; with a finalizer, only marks for deletion until it is removed", () =>
      withStore(async (store, ns) => {
        await store.create(newTask(ns, "plain"));
        await store.delete("OpTask", ns, "plain");
        expect(await store.get("OpTask", ns, "plain")).toBeUndefined();
        await expect(store.delete("OpTask", ns, "plain")).rejects.toBeInstanceOf(NotFoundError);

        const held = newTask(ns, "held");
        held.metadata.finalizers = ["odop.io/cleanup"];
        await store.create(held);
        await store.delete("OpTask", ns, "held");
        const marked = await store.get("OpTask", ns, "held");
        expect(marked?.metadata.deletionTimestamp).toMatch(/.+/);
        await store.update({ ...marked!, metadata: { ...marked!.metadata, finalizers: [] } });
        expect(await store.get("OpTask", ns, "held")).toBeUndefined();
      }));

    it("watch delivers existing objects, then changes in order", () =>
      withStore(async (store, ns) => {
        await store.create(newTask(ns, "before"));
        const seen: WatchEvent<OpTask>[] = [];
        const stop = store.watch("OpTask", (e) => {
          if (e.object.metadata.namespace === ns) seen.push(e);
        });
        try {
          await until(() => (seen.length >= 1 ? true : undefined), "initial ADDED");
          const b = await store.create(newTask(ns, "after"));
          await store.updateStatus({ ...b, status: { runs: 1 } });
          await store.delete("OpTask", ns, "after");
          await until(() => (seen.length >= 4 ? true : undefined), "four events");
          expect(seen.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
            "ADDED before",
            "ADDED after",
            "MODIFIED after",
            "DELETED after",
          ]);
          expect(seen[2]?.object.status?.runs).toBe(1);
        } finally {
          stop();
        }
      }));

    it("records events and counts repeats", () =>
      withStore(async (store, ns) => {
        const created = await store.create(newTask(ns, "a"));
        const ref = { kind: "OpTask" as const, namespace: ns, name: "a", uid: created.metadata.uid };
        await store.recordEvent(ref, "Normal", "Created", "execution a-1 created");
        await store.recordEvent(ref, "Warning", "InvalidSpec", "bad");
        await store.recordEvent(ref, "Warning", "InvalidSpec", "bad");
        const events = await store.events(ref);
        expect(events.map((e) => [e.reason, e.count])).toEqual([
          ["Created", 1],
          ["InvalidSpec", 2],
        ]);
      }));
  });
}
