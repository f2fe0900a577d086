/**
 * The watch of the Kubernetes store against a scripted API server on 127.0.0.1: first
 * list, watch from its resourceVersion, relist and diff on 410, reconnect with backoff
 * after a dropped connection. Waits are on events, never on time.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { OpTask } from "../../src/api/optask.ts";
import { KubernetesStore } from "../../src/store/kubernetes.ts";
import type { WatchEvent } from "../../src/store/types.ts";
import { closeAfterEach, FakeApi, listOf, sendStatus, status, streamOf, task, until } from "./kubernetes-fake-api.ts";

const log = pino({ level: "silent" });
const NS = "ns";

const closing = closeAfterEach();

function start(api: FakeApi, delays: number[] = []) {
  closing(api);
  const store = closing(
    new KubernetesStore({
      kubeConfig: api.kubeConfig(),
      log,
      namespace: NS,
      watchBackoff: { initialMs: 10, maxMs: 1000, random: () => 0.5, sleep: (ms) => (delays.push(ms), Promise.resolve()) },
    }),
  );
  const seen: WatchEvent<OpTask>[] = [];
  const stop = store.watch("OpTask", (e) => seen.push(e));
  const names = () => seen.map((e) => `${e.type} ${e.object.metadata.name} ${e.object.metadata.resourceVersion}`);
  return { seen, names, stop, store };
}

describe("kubernetes store watch", () => {
  it("lists, then watches from the list's resourceVersion, delivering in order and asynchronously", async () => {
    const fake = await new FakeApi()
      .onList(listOf([task(NS, "a", "5"), task(NS, "b", "6")], "10"))
      .onWatch(
        streamOf(
          [
            { type: "MODIFIED", object: task(NS, "a", "11", true) },
            { type: "BOOKMARK", object: { kind: "OpTask", apiVersion: "odop.io/v1alpha1", metadata: { resourceVersion: "12" } } },
            { type: "DELETED", object: task(NS, "b", "13") },
          ],
          "hold",
        ),
      )
      .start();
    const { seen, names } = start(fake);
    expect(seen).toHaveLength(0);
    await until(() => seen.length >= 4, "four events");
    expect(names()).toEqual(["ADDED a 5", "ADDED b 6", "MODIFIED a 11", "DELETED b 13"]);
    expect(seen[2]?.object.spec.suspend).toBe(true);
    expect(seen[0]?.object.kind).toBe("OpTask");
    const [watch] = fake.watchRequests();
    expect(watch?.path).toBe("/apis/odop.io/v1alpha1/namespaces/ns/optasks");
    expect(watch?.query.get("resourceVersion")).toBe("10");
    expect(watch?.query.get("allowWatchBookmarks")).toBe("true");
  });

  it("on an expired watch (ERROR 410) lists again and delivers only the difference", async () => {
    const fake = await new FakeApi()
      .onList(listOf([task(NS, "a", "5"), task(NS, "b", "6"), task(NS, "c", "7")], "10"))
      .onWatch(
        streamOf(
          [
            { type: "MODIFIED", object: task(NS, "a", "11") },
            { type: "ERROR", object: status(410, "Expired", "too old resource version: 11 (500)") },
          ],
          "hold",
        ),
      )
      // Missed while expired: b deleted, c changed, d created; a unchanged since 11.
      .onList(listOf([task(NS, "a", "11"), task(NS, "c", "14", true), task(NS, "d", "15")], "20"))
      .onWatch(streamOf([{ type: "ADDED", object: task(NS, "e", "21") }], "hold"))
      .start();
    const { seen, names } = start(fake);
    await until(() => seen.some((e) => e.object.metadata.name === "e"), "ADDED e after the relist");
    expect(names()).toEqual(["ADDED a 5", "ADDED b 6", "ADDED c 7", "MODIFIED a 11", "DELETED b 6", "MODIFIED c 14", "ADDED d 15", "ADDED e 21"]);
    expect(fake.listRequests().map((r) => r.query.get("resourceVersion"))).toEqual([null, null]);
    expect(fake.watchRequests().map((r) => r.query.get("resourceVersion"))).toEqual(["10", "20"]);
  });

  it("on an HTTP 410 answer to the watch lists again", async () => {
    const fake = await new FakeApi()
      .onList(listOf([task(NS, "a", "5")], "10"))
      .onWatch((res) => sendStatus(res, 410, "Expired", "too old resource version"))
      .onList(listOf([task(NS, "a", "5"), task(NS, "b", "16")], "20"))
      .start();
    const { seen, names } = start(fake);
    await until(() => seen.length >= 2, "ADDED b after the relist");
    await until(() => fake.watchRequests().length >= 2, "the watch from the new list");
    expect(names()).toEqual(["ADDED a 5", "ADDED b 16"]);
    expect(fake.watchRequests().map((r) => r.query.get("resourceVersion"))).toEqual(["10", "20"]);
  });

  it("after a dropped connection reconnects from the last resourceVersion, backing off while it fails", async () => {
    const delays: number[] = [];
    const fake = await new FakeApi()
      .onList(listOf([task(NS, "a", "5")], "10"))
      .onWatch(streamOf([{ type: "MODIFIED", object: task(NS, "a", "11") }], "drop"))
      .onWatch((res) => sendStatus(res, 500, "InternalError", "etcd leader changed"))
      .onWatch((res) => sendStatus(res, 503, "ServiceUnavailable", "apiserver shutting down"))
      .onWatch(streamOf([{ type: "MODIFIED", object: task(NS, "a", "12") }], "hold"))
      .start();
    const { seen, names } = start(fake, delays);
    await until(() => seen.length >= 3, "the change after reconnecting");
    expect(names()).toEqual(["ADDED a 5", "MODIFIED a 11", "MODIFIED a 12"]);
    expect(fake.listRequests()).toHaveLength(1);
    expect(fake.watchRequests().map((r) => r.query.get("resourceVersion"))).toEqual(["10", "11", "11", "11"]);
    // Jitter draws 0.5 here: each delay is 3/4 of 10 ms · 2^n; the drop came after a
    // delivered event, so the count started again at 10 ms.
    expect(delays).toEqual([7.5, 15, 30]);
  });

  it("backs off on a watch that the server closes at once without news, not on one that delivered", async () => {
    const delays: number[] = [];
    const fake = await new FakeApi()
      .onList(listOf([], "10"))
      .onWatch(streamOf([{ type: "ADDED", object: task(NS, "a", "11") }], "end"))
      .onWatch(streamOf([], "end"))
      .onWatch(streamOf([], "end"))
      .onWatch(streamOf([{ type: "DELETED", object: task(NS, "a", "12") }], "hold"))
      .start();
    const { seen, names } = start(fake, delays);
    await until(() => seen.length >= 2, "the deletion");
    expect(names()).toEqual(["ADDED a 11", "DELETED a 12"]);
    expect(delays).toEqual([7.5, 15]);
  });

  it("relists with backoff when the list fails, then delivers the objects once", async () => {
    const delays: number[] = [];
    const fake = await new FakeApi()
      .onList((res) => sendStatus(res, 503, "ServiceUnavailable", "starting"))
      .onList(listOf([task(NS, "a", "5")], "10"))
      .start();
    const { seen, names } = start(fake, delays);
    await until(() => seen.length >= 1 && fake.watchRequests().length >= 1, "the list and the watch");
    expect(names()).toEqual(["ADDED a 5"]);
    expect(delays).toEqual([7.5]);
  });

  it("shares one informer: a later handler gets the cache as ADDED without a new list, and close stops the watch", async () => {
    const fake = await new FakeApi().onList(listOf([task(NS, "a", "5"), task(NS, "b", "6")], "10")).start();
    const first = start(fake);
    await until(() => first.seen.length >= 2 && fake.openWatches === 1, "the first handler synced");
    const second: string[] = [];
    const stop = first.store.watch("OpTask", (e) => second.push(`${e.type} ${e.object.metadata.name}`));
    await until(() => second.length >= 2, "the replay");
    expect(second).toEqual(["ADDED a", "ADDED b"]);
    expect(fake.listRequests()).toHaveLength(1);
    expect(fake.watchRequests()).toHaveLength(1);
    stop();
    first.stop();
    await until(() => fake.openWatches === 0, "the watch closed after the last handler left");
  });

  it("returns objects that break the schema as they are", async () => {
    const broken = { ...task(NS, "x", "5"), spec: { trigger: { nonsense: {} } } };
    const fake = await new FakeApi().onList(listOf([broken], "10")).start();
    const { seen } = start(fake);
    await until(() => seen.length >= 1, "ADDED x");
    expect(seen[0]?.object.metadata.name).toBe("x");
    expect((seen[0]?.object.spec.trigger as Record<string, unknown>)["nonsense"]).toEqual({});
  });
});
