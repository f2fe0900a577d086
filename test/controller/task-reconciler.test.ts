/** The task reconciler on its own, with a fake clock and file probe (unit tests of logic). */
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { OpTask } from "../../src/api/optask.ts";
import { FakeClock } from "../../src/controller/clock.ts";
import { TaskReconciler } from "../../src/controller/task-reconciler.ts";
import type { FileProbe } from "../../src/agent/file-probe.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import type { Store } from "../../src/store/types.ts";

const noFiles: FileProbe = { list: () => [], stat: () => undefined, openForWriting: () => new Set() };

function reconciler(store: Store, clock = new FakeClock()) {
  return new TaskReconciler({ store, clock, log: pino({ level: "silent" }), files: noFiles, draining: () => false, backends: new Set(["local"]) });
}

function task(spec: Partial<OpTask["spec"]>): OpTask {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name: "t", namespace: "default" },
    spec: { trigger: { manual: {} }, run: { command: ["true"] }, policy: { priority: 0, onContention: "pause", concurrency: 1 }, suspend: false, ...spec },
  };
}

describe("TaskReconciler", () => {
  it("turns what only odop can check into Ready=False InvalidSpec, creating nothing", async () => {
    const store = new EmbeddedStore();
    await store.create(task({ trigger: { schedule: { cron: "*/5 * * * *" } } }));
    // What a Kubernetes API server would hold: the CRD's CEL checks the cron's shape only.
    const apiServer: Store = {
      get: async (kind, ns, name) => {
        const t = await store.get(kind, ns, name);
        if (t?.kind === "OpTask" && t.spec.trigger.schedule !== undefined) t.spec.trigger.schedule.cron = "61 * * * *";
        return t;
      },
      list: (kind, ns) => store.list(kind, ns),
      create: (o) => store.create(o),
      update: (o) => store.update(o),
      updateStatus: (o) => store.updateStatus(o),
      delete: (kind, ns, name) => store.delete(kind, ns, name),
      watch: (kind, handler) => store.watch(kind, handler),
      recordEvent: (ref, type, reason, message) => store.recordEvent(ref, type, reason, message),
      events: (ref) => store.events(ref),
      close: () => store.close(),
    };
    await reconciler(apiServer).reconcile("default", "t");
    const ready = (await store.get("OpTask", "default", "t"))?.status?.conditions?.find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "InvalidSpec" });
    expect(ready?.message).toMatch(/^spec\.trigger\.schedule\.cron: cron must be five fields/);
    expect(await store.list("OpExecution")).toEqual([]);
  });

  it("says which backend is missing", async () => {
    const store = new EmbeddedStore();
    await store.create(task({ backend: "kubernetes", run: { image: "busybox" } }));
    await reconciler(store).reconcile("default", "t");
    const ready = (await store.get("OpTask", "default", "t"))?.status?.conditions?.find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "InvalidSpec", message: "backend kubernetes is not available here (this controller runs: local)" });
  });

  it("creates one execution per schedule slot, however often it reconciles, and none before the first slot", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0));
    const store = new EmbeddedStore({ now: () => new Date(clock.now()) });
    await store.create(task({ trigger: { schedule: { every: "1m" } } }));
    const r = reconciler(store, clock);
    expect(await r.reconcile("default", "t")).toEqual({ requeueAfterMs: 60_000 });
    expect(await store.list("OpExecution")).toHaveLength(0);
    clock.advance(61_000);
    await r.reconcile("default", "t");
    await r.reconcile("default", "t");
    clock.advance(150_000); // two slots pass while nobody looks: they collapse into one
    await r.reconcile("default", "t");
    const executions = await store.list("OpExecution");
    expect(executions.map((e) => e.spec.trigger.time)).toEqual(["2026-01-01T00:01:00Z", "2026-01-01T00:03:00Z"]);
    expect((await store.get("OpTask", "default", "t"))?.status).toMatchObject({ runs: 2, active: 2, trigger: "every 1m" });
  });
});

describe("TaskReconciler, fileIn", () => {
  it("processes a file again when it is written again after it was handled, and never twice otherwise", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0));
    const store = new EmbeddedStore({ now: () => new Date(clock.now()) });
    let mtimeMs = clock.now() + 5_000;
    const files: FileProbe = {
      list: () => [{ path: "/data/step_0001.dat", mtimeMs, size: 10 }],
      stat: () => undefined,
      openForWriting: () => new Set(),
    };
    const r = new TaskReconciler({ store, clock, log: pino({ level: "silent" }), files, draining: () => false, backends: new Set(["local"]) });
    await store.create(task({ trigger: { fileIn: { path: "/data", pattern: "*.dat", batchSize: 1 } } }));
    clock.advance(10_000);
    await r.reconcile("default", "t");
    await r.reconcile("default", "t");
    expect(await store.list("OpExecution")).toHaveLength(1);
    clock.advance(60_000);
    mtimeMs = clock.now(); // the next run of the simulation writes the same name again
    clock.advance(1_000);
    await r.reconcile("default", "t");
    await r.reconcile("default", "t");
    const executions = await store.list("OpExecution");
    expect(executions).toHaveLength(2);
    expect(executions.map((e) => e.spec.trigger.files)).toEqual([["/data/step_0001.dat"], ["/data/step_0001.dat"]]);
  });

  it("takes a file written just after the task was created even when the kernel's coarse clock dates it a tick before; older files are not new", async () => {
    // The task is created 2 ms into a second (creationTimestamp keeps whole seconds).
    const created = Date.UTC(2026, 0, 1, 0, 0, 0) + 2;
    const clock = new FakeClock(created);
    const store = new EmbeddedStore({ now: () => new Date(clock.now()) });
    const files: FileProbe = {
      list: () => [
        { path: "/data/just-after.dat", mtimeMs: created - 2 - 4, size: 1 }, // written at +1 ms, dated one 4 ms tick earlier
        { path: "/data/old.dat", mtimeMs: created - 60_000, size: 1 },
      ],
      stat: () => undefined,
      openForWriting: () => new Set(),
    };
    const r = new TaskReconciler({ store, clock, log: pino({ level: "silent" }), files, draining: () => false, backends: new Set(["local"]) });
    await store.create(task({ trigger: { fileIn: { path: "/data", pattern: "*.dat", batchSize: 1 } } }));
    clock.advance(1_000);
    await r.reconcile("default", "t");
    expect((await store.list("OpExecution")).map((e) => e.spec.trigger.files)).toEqual([["/data/just-after.dat"]]);
  });
});
