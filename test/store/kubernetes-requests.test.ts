/**
 * What the Kubernetes store sends, and how it reads the answers, against a scripted API
 * server on 127.0.0.1. The API server's semantics themselves are checked by the
 * contract suite (kubernetes.test.ts) whenever a cluster is reachable.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { OpTask } from "../../src/api/optask.ts";
import { ConflictError, InvalidError, NotFoundError } from "../../src/store/errors.ts";
import { isTransient, KubernetesApiError } from "../../src/store/kubernetes-errors.ts";
import { KubernetesStore } from "../../src/store/kubernetes.ts";
import { closeAfterEach, FakeApi, kubeConfigFor, sendJson, sendStatus, task } from "./kubernetes-fake-api.ts";

const log = pino({ level: "silent" });
const closing = closeAfterEach();

async function withFake(setup: (api: FakeApi) => void, namespace?: string): Promise<{ api: FakeApi; store: KubernetesStore }> {
  const api = closing(new FakeApi());
  setup(api);
  await api.start();
  const store = closing(new KubernetesStore({ kubeConfig: api.kubeConfig(), log, ...(namespace === undefined ? {} : { namespace }) }));
  return { api, store };
}

const echo = (code: number) => (res: Parameters<Parameters<FakeApi["on"]>[2]>[0], request: { body: unknown }) => sendJson(res, code, request.body);

describe("kubernetes store requests", () => {
  it("update writes the main resource and updateStatus the status subresource, both with the resourceVersion read", async () => {
    const { api, store } = await withFake((api) =>
      api.on("PUT", /\/optasks\/a\/status$/, echo(200)).on("PUT", /\/optasks\/a$/, echo(200)),
    );
    const read = task("ns", "a", "42") as OpTask;
    await store.update({ ...read, spec: { ...read.spec, suspend: true } });
    await store.updateStatus({ ...read, status: { runs: 1 } });
    const puts = api.of("PUT");
    expect(puts.map((p) => p.path)).toEqual(["/apis/odop.io/v1alpha1/namespaces/ns/optasks/a", "/apis/odop.io/v1alpha1/namespaces/ns/optasks/a/status"]);
    expect(puts.map((p) => (p.body as OpTask).metadata.resourceVersion)).toEqual(["42", "42"]);
  });

  it("maps a 409 on a stale write to ConflictError and a 422 to InvalidError with the server's causes", async () => {
    const { store } = await withFake((api) =>
      api
        .on("PUT", /\/optasks\/a\/status$/, (res) => sendStatus(res, 409, "Conflict", "the object has been modified"))
        .on("POST", /\/optasks$/, (res) =>
          sendStatus(res, 422, "Invalid", 'OpTask.odop.io "b" is invalid', [{ field: "spec.requirements.cpu", message: "min must not exceed max" }]),
        ),
    );
    await expect(store.updateStatus({ ...(task("ns", "a", "1") as OpTask), status: { runs: 2 } })).rejects.toBeInstanceOf(ConflictError);
    const invalid = await store.create(task("ns", "b", "") as OpTask).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(InvalidError);
    expect((invalid as InvalidError).problems).toEqual([{ path: ["spec", "requirements", "cpu"], message: "min must not exceed max" }]);
  });

  it("creates without the fields the server owns, in the namespace given, and cluster-scoped OpNodes at the cluster path", async () => {
    const { api, store } = await withFake((api) => api.on("POST", /./, echo(201)), "watched");
    await store.create(task("ns", "a", "9") as OpTask);
    await store.create({ apiVersion: "odop.io/v1alpha1", kind: "OpNode", metadata: { name: "n1", namespace: "x" }, spec: {} } as never);
    const posts = api.of("POST");
    expect(posts.map((p) => p.path)).toEqual(["/apis/odop.io/v1alpha1/namespaces/ns/optasks", "/apis/odop.io/v1alpha1/opnodes"]);
    const meta = (posts[0]?.body as OpTask).metadata;
    expect(meta.resourceVersion).toBeUndefined();
    expect(meta.uid).toBeUndefined();
    expect((posts[1]?.body as OpTask).metadata.namespace).toBeUndefined();
  });

  it("get answers undefined on 404; delete of a missing object is NotFoundError", async () => {
    const { store } = await withFake(() => undefined);
    expect(await store.get("OpTask", "ns", "missing")).toBeUndefined();
    await expect(store.delete("OpTask", "ns", "missing")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("lists every page, following continue tokens", async () => {
    const { api, store } = await withFake((api) =>
      api.on("GET", /\/optasks$/, (res, request) => {
        const page = request.query.get("continue");
        if (page === null) sendJson(res, 200, { metadata: { resourceVersion: "9", continue: "p2" }, items: [task("ns", "a", "1")] });
        else sendJson(res, 200, { metadata: { resourceVersion: "9" }, items: [task("ns", "b", "2")] });
      }),
    );
    expect((await store.list("OpTask", "ns")).map((t) => t.metadata.name)).toEqual(["a", "b"]);
    expect(api.of("GET").map((r) => r.query.get("continue"))).toEqual([null, "p2"]);
  });

  it("reports other statuses with their code and message, and an unreachable server as transient", async () => {
    const { store } = await withFake((api) => api.on("GET", /\/optasks\/a$/, (res) => sendStatus(res, 403, "Forbidden", 'User "x" cannot get optasks')));
    const forbidden = await store.get("OpTask", "ns", "a").catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(KubernetesApiError);
    expect((forbidden as KubernetesApiError).status).toBe(403);
    expect((forbidden as Error).message).toContain('User "x" cannot get optasks');
    expect(isTransient(forbidden)).toBe(false);

    const closed = new FakeApi();
    await closed.start();
    const url = closed.url;
    await closed.close();
    const offline = new KubernetesStore({ kubeConfig: kubeConfigFor(url), log });
    const error = await offline.get("OpTask", "ns", "a").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubernetesApiError);
    expect(isTransient(error)).toBe(true);
    await offline.close();
  });

  it("records an Event once, then patches its count for repeats; OpNode events go to default", async () => {
    const { api, store } = await withFake((api) =>
      api.on("POST", /\/events$/, echo(201)).on("PATCH", /\/events\/[^/]+$/, (res) => sendJson(res, 200, {})),
    );
    const ref = { kind: "OpTask" as const, namespace: "ns", name: "a", uid: "u1" };
    await store.recordEvent(ref, "Warning", "invalid spec", "x".repeat(2000));
    await store.recordEvent(ref, "Warning", "invalid spec", "x".repeat(2000));
    await store.recordEvent(ref, "Warning", "invalid spec", "x".repeat(2000));
    await store.recordEvent({ kind: "OpNode", name: "n1" }, "Normal", "Stale", "no samples");
    const posts = api.of("POST");
    expect(posts.map((p) => p.path)).toEqual(["/api/v1/namespaces/ns/events", "/api/v1/namespaces/default/events"]);
    const event = posts[0]?.body as Record<string, any>;
    expect(event["reason"]).toBe("InvalidSpec");
    expect(event["message"]).toHaveLength(1024);
    expect(event["count"]).toBe(1);
    expect(event["reportingComponent"]).toBe("odop");
    expect(event["source"].component).toBe("odop");
    expect(event["involvedObject"]).toEqual({ apiVersion: "odop.io/v1alpha1", kind: "OpTask", name: "a", namespace: "ns", uid: "u1" });
    expect((posts[1]?.body as Record<string, any>)["involvedObject"].namespace).toBeUndefined();
    const patches = api.of("PATCH");
    expect(patches.map((p) => p.path)).toEqual([`/api/v1/namespaces/ns/events/${event["metadata"].name}`, `/api/v1/namespaces/ns/events/${event["metadata"].name}`]);
    expect(patches.map((p) => (p.body as { path: string; value: unknown }[]).find((op) => op.path === "/count")?.value)).toEqual([2, 3]);
    expect(patches[0]?.contentType).toBe("application/json-patch+json");
  });

  it("creates a new Event when the one it would count is gone, and lists with a field selector", async () => {
    const { api, store } = await withFake((api) =>
      api
        .on("POST", /\/events$/, echo(201))
        .on("PATCH", /\/events\/[^/]+$/, (res) => sendStatus(res, 404, "NotFound", "expired"))
        .on("GET", /\/events$/, (res) =>
          sendJson(res, 200, {
            items: [
              { metadata: { name: "a.2", namespace: "ns" }, involvedObject: { kind: "OpTask", name: "a", namespace: "ns" }, reason: "Late", message: "m", type: "Warning", count: 2, firstTimestamp: "2026-01-01T00:00:05Z", lastTimestamp: "2026-01-01T00:00:09Z" },
              { metadata: { name: "a.1", namespace: "ns" }, involvedObject: { kind: "OpTask", name: "a", namespace: "ns" }, reason: "Early", message: "m", type: "Normal", count: 1, firstTimestamp: "2026-01-01T00:00:01Z", lastTimestamp: "2026-01-01T00:00:01Z" },
            ],
          }),
        ),
    );
    const ref = { kind: "OpTask" as const, namespace: "ns", name: "a" };
    await store.recordEvent(ref, "Normal", "Armed", "armed");
    await store.recordEvent(ref, "Normal", "Armed", "armed");
    expect(api.of("POST")).toHaveLength(2);
    const events = await store.events(ref);
    expect(events.map((e) => [e.reason, e.count, e.type, e.firstTimestamp])).toEqual([
      ["Early", 1, "Normal", "2026-01-01T00:00:01Z"],
      ["Late", 2, "Warning", "2026-01-01T00:00:05Z"],
    ]);
    const selector = api.of("GET", /\/events$/)[0]?.query.get("fieldSelector");
    expect(selector?.split(",").sort()).toEqual(
      ["involvedObject.apiVersion=odop.io/v1alpha1", "involvedObject.kind=OpTask", "involvedObject.name=a", "involvedObject.namespace=ns"].sort(),
    );
  });
});
