/** Pod templates from a ConfigMap, read from a scripted API server on 127.0.0.1. */
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigMapTemplateSource, STAGE_POD_KEY } from "../../../src/backends/kubernetes/template-source.ts";
import { FakeApi, sendJson, status } from "../../store/kubernetes-fake-api.ts";

let api: FakeApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function serve(answers: (() => [number, unknown])[]) {
  api = await new FakeApi().start();
  let i = 0;
  api.on("GET", /\/api\/v1\/namespaces\/odop-system\/configmaps\/odop-pod-templates$/, (res) => {
    const [code, body] = (answers[Math.min(i, answers.length - 1)] ?? (() => [500, {}]))();
    i += 1;
    sendJson(res, code, body);
  });
  return new ConfigMapTemplateSource({ kubeConfig: api.kubeConfig(), log: pino({ level: "silent" }), namespace: "odop-system", name: "odop-pod-templates" });
}

const configMap = (text: string) => () => [200, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "odop-pod-templates" }, data: { [STAGE_POD_KEY]: text } }] as [number, unknown];

describe("ConfigMapTemplateSource", () => {
  it("reads the template, follows changes, and keeps the last good one when the text breaks", async () => {
    const source = await serve([
      configMap("spec:\n  priorityClassName: opportunistic\n  tolerations: [{key: hpc, operator: Exists}]\n"),
      configMap("spec: [not, a, map]\n"),
      configMap("spec:\n  priorityClassName: batch-low\n"),
    ]);
    await source.refresh();
    expect(source.get()).toEqual({ spec: { priorityClassName: "opportunistic", tolerations: [{ key: "hpc", operator: "Exists" }] } });
    await source.refresh();
    expect(source.get()?.spec?.priorityClassName).toBe("opportunistic");
    await source.refresh();
    expect(source.get()).toEqual({ spec: { priorityClassName: "batch-low" } });
  });

  it("means no template when the ConfigMap or its key is missing", async () => {
    const source = await serve([() => [404, status(404, "NotFound", 'configmaps "odop-pod-templates" not found')], configMap("")]);
    await source.refresh();
    expect(source.get()).toBeUndefined();
    await source.refresh();
    expect(source.get()).toBeUndefined();
  });
});
