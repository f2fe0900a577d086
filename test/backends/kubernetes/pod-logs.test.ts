/** Reading a stage's log from its pod, against a scripted API server on 127.0.0.1. */
import { afterEach, describe, expect, it } from "vitest";
import { readStageLog } from "../../../src/backends/kubernetes/pod-logs.ts";
import { FakeApi, sendJson } from "../../store/kubernetes-fake-api.ts";

let api: FakeApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

const pod = (name: string, attempt: number) => ({ metadata: { name, namespace: "sci", labels: { "odop.io/execution": "compress-1", "odop.io/attempt": String(attempt) } } });

describe("readStageLog", () => {
  it("reads the stage container's log of the newest attempt, or of the one named", async () => {
    api = await new FakeApi().start();
    api.on("GET", /\/api\/v1\/namespaces\/sci\/pods$/, (res) => sendJson(res, 200, { apiVersion: "v1", kind: "PodList", metadata: {}, items: [pod("compress-1-1", 1), pod("compress-1-2", 2)] }));
    api.on("GET", /\/pods\/[^/]+\/log$/, (res, request) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`log of ${request.path.split("/")[6] ?? ""} ${request.query.get("container") ?? ""}\n`);
    });
    expect(await readStageLog(api.kubeConfig(), "sci", "compress-1", "run")).toBe("log of compress-1-2 run\n");
    expect(await readStageLog(api.kubeConfig(), "sci", "compress-1", "configure", 1)).toBe("log of compress-1-1 configure\n");
    expect(api.of("GET", /\/pods$/)[0]?.query.get("labelSelector")).toBe("odop.io/execution=compress-1");
    await expect(readStageLog(api.kubeConfig(), "sci", "compress-1", "run", 3)).rejects.toThrow(/no pod of sci\/compress-1 attempt 3/);
  });
});
