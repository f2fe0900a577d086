/**
 * Pods on the scripted API server (test/store/kubernetes-fake-api.ts): a small stateful
 * pod collection in one namespace that answers create, get, merge patch, delete and list
 * the way the API server does (Status objects, 409 AlreadyExists, 404), and streams every
 * change to the open watches as JSON lines. The kubelet's part (statuses, finishing a
 * deletion) is played by the test through `setStatus` and `finishDeletion`.
 */
import type { ServerResponse } from "node:http";
import { type FakeApi, type Recorded, sendJson, sendStatus } from "../../store/kubernetes-fake-api.ts";

type Pod = { metadata: Record<string, unknown> & { name: string; namespace: string; uid: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string }; spec?: unknown; status?: unknown };

export class FakePods {
  readonly api: FakeApi;
  readonly namespace: string;
  readonly pods = new Map<string, Pod>();
  readonly #watchers = new Set<ServerResponse>();
  #version = 100;
  #uid = 0;
  /** Deletions finish by themselves (as on a healthy node) after this many GETs of the pod; Infinity: only finishDeletion(). */
  deleteAfterGets = 1;
  readonly #getsSinceDelete = new Map<string, number>();
  /** Names whose next GET answers 404 once (a pod the informer and a GET both missed). */
  readonly hideOnce = new Set<string>();

  constructor(api: FakeApi, namespace: string) {
    this.api = api;
    this.namespace = namespace;
    const base = `^/api/v1/namespaces/${namespace}/pods`;
    api.on("POST", new RegExp(`${base}$`), (res, r) => this.#create(res, r));
    api.on("GET", new RegExp(`${base}/[^/]+$`), (res, r) => this.#get(res, r));
    api.on("PATCH", new RegExp(`${base}/[^/]+$`), (res, r) => this.#patch(res, r));
    api.on("DELETE", new RegExp(`${base}/[^/]+$`), (res, r) => this.#delete(res, r));
    api.on("GET", new RegExp(`${base}$`), (res, r) => this.#list(res, r));
    // Every watch connection (and reconnection) joins the live stream.
    for (let i = 0; i < 20; i += 1) api.onWatch((res) => this.#watch(res));
  }

  /** Puts a pod in place (as if created earlier), announcing it to the watches. */
  seed(pod: Omit<Pod, "metadata"> & { metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> } & Record<string, unknown> }): Pod {
    const stored: Pod = { ...pod, metadata: { namespace: this.namespace, uid: `uid-${(this.#uid += 1)}`, ...pod.metadata, resourceVersion: this.#nextVersion() } };
    const existed = this.pods.has(stored.metadata.name);
    this.pods.set(stored.metadata.name, stored);
    this.#emit(existed ? "MODIFIED" : "ADDED", stored);
    return stored;
  }

  /** The kubelet reports a new status. */
  setStatus(name: string, status: unknown): void {
    const pod = this.#must(name);
    pod.status = status;
    pod.metadata.resourceVersion = this.#nextVersion();
    this.#emit("MODIFIED", pod);
  }

  /** The kubelet confirms a deletion: the pod is gone. */
  finishDeletion(name: string): void {
    const pod = this.#must(name);
    this.pods.delete(name);
    this.#emit("DELETED", pod);
  }

  #must(name: string): Pod {
    const pod = this.pods.get(name);
    if (pod === undefined) throw new Error(`no pod ${name}`);
    return pod;
  }

  #nextVersion(): string {
    this.#version += 1;
    return String(this.#version);
  }

  #emit(type: "ADDED" | "MODIFIED" | "DELETED", pod: Pod): void {
    const line = `${JSON.stringify({ type, object: { apiVersion: "v1", kind: "Pod", ...structuredClone(pod) } })}\n`;
    for (const res of this.#watchers) res.write(line);
  }

  #watch(res: ServerResponse): void {
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    this.#watchers.add(res);
    res.on("close", () => this.#watchers.delete(res));
  }

  #nameOf(r: Recorded): string {
    return decodeURIComponent(r.path.split("/").at(-1) ?? "");
  }

  #create(res: ServerResponse, r: Recorded): void {
    const body = r.body as Pod;
    const name = body.metadata.name;
    if (this.pods.has(name)) return sendStatus(res, 409, "AlreadyExists", `pods "${name}" already exists`);
    const pod: Pod = {
      ...body,
      metadata: { ...body.metadata, namespace: this.namespace, uid: `uid-${(this.#uid += 1)}`, resourceVersion: this.#nextVersion(), creationTimestamp: "2026-03-01T10:00:00Z" },
      status: { phase: "Pending", qosClass: "Burstable" },
    };
    this.pods.set(name, pod);
    this.#emit("ADDED", pod);
    sendJson(res, 201, { apiVersion: "v1", kind: "Pod", ...pod });
  }

  #get(res: ServerResponse, r: Recorded): void {
    const name = this.#nameOf(r);
    if (this.hideOnce.delete(name)) return sendStatus(res, 404, "NotFound", `pods "${name}" not found`);
    const pod = this.pods.get(name);
    if (pod !== undefined && pod.metadata.deletionTimestamp !== undefined) {
      const gets = (this.#getsSinceDelete.get(name) ?? 0) + 1;
      this.#getsSinceDelete.set(name, gets);
      if (gets > this.deleteAfterGets) {
        this.finishDeletion(name);
        return sendStatus(res, 404, "NotFound", `pods "${name}" not found`);
      }
    }
    if (pod === undefined) return sendStatus(res, 404, "NotFound", `pods "${name}" not found`);
    sendJson(res, 200, { apiVersion: "v1", kind: "Pod", ...pod });
  }

  #patch(res: ServerResponse, r: Recorded): void {
    const name = this.#nameOf(r);
    const pod = this.pods.get(name);
    if (pod === undefined) return sendStatus(res, 404, "NotFound", `pods "${name}" not found`);
    if (r.contentType !== "application/merge-patch+json") return sendStatus(res, 415, "UnsupportedMediaType", `content type ${r.contentType ?? ""}`);
    const patch = (r.body as { metadata?: { labels?: Record<string, string | null>; annotations?: Record<string, string | null> } }).metadata ?? {};
    for (const field of ["labels", "annotations"] as const) {
      const merged: Record<string, string> = { ...pod.metadata[field] };
      for (const [k, v] of Object.entries(patch[field] ?? {})) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      pod.metadata[field] = merged;
    }
    pod.metadata.resourceVersion = this.#nextVersion();
    this.#emit("MODIFIED", pod);
    sendJson(res, 200, { apiVersion: "v1", kind: "Pod", ...pod });
  }

  #delete(res: ServerResponse, r: Recorded): void {
    const name = this.#nameOf(r);
    const pod = this.pods.get(name);
    if (pod === undefined) return sendStatus(res, 404, "NotFound", `pods "${name}" not found`);
    const uid = (r.body as { preconditions?: { uid?: string } } | undefined)?.preconditions?.uid;
    if (uid !== undefined && uid !== pod.metadata.uid) return sendStatus(res, 409, "Conflict", "Precondition failed: UID in precondition");
    pod.metadata.deletionTimestamp ??= "2026-03-01T10:10:00Z";
    pod.metadata["deletionGracePeriodSeconds"] = Number(r.query.get("gracePeriodSeconds") ?? 30);
    pod.metadata.resourceVersion = this.#nextVersion();
    this.#emit("MODIFIED", pod);
    sendJson(res, 200, { apiVersion: "v1", kind: "Pod", ...pod });
  }

  #list(res: ServerResponse, r: Recorded): void {
    const selector = (r.query.get("labelSelector") ?? "").split(",").filter((s) => s !== "");
    const items = [...this.pods.values()].filter((p) =>
      selector.every((term) => {
        const [k, v] = term.split("=");
        return p.metadata.labels?.[k ?? ""] === v;
      }),
    );
    sendJson(res, 200, { apiVersion: "v1", kind: "PodList", metadata: { resourceVersion: String(this.#version) }, items });
  }
}

/** Container statuses as a kubelet writes them (raw JSON, timestamps as strings). */
export const kubelet = {
  running: (name: string) => ({ name, state: { running: { startedAt: "2026-03-01T10:00:01Z" } }, ready: false, restartCount: 0, image: "img", imageID: "", started: true }),
  waiting: (name: string, reason: string) => ({ name, state: { waiting: { reason } }, ready: false, restartCount: 0, image: "img", imageID: "" }),
  terminated: (name: string, exitCode: number) => ({
    name,
    state: { terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt: "2026-03-01T10:00:01Z", finishedAt: "2026-03-01T10:05:00Z", containerID: "containerd://1" } },
    ready: false,
    restartCount: 0,
    image: "img",
    imageID: "",
    started: false,
  }),
};
