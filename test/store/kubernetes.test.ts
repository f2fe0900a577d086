/**
 * The store contract against a real API server: whatever KUBECONFIG (or ~/.kube/config)
 * names, e.g. `kind create cluster`. The odop CRDs are applied from crds/*.yaml when the
 * server lacks them and the user may create them; each case runs in a fresh namespace
 * that is deleted afterwards. Without a reachable cluster the suite is skipped, with the
 * reason in its name and on stderr, so that a green run never hides the skip.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { ApiextensionsV1Api, CoreV1Api, KubeConfig, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import pino from "pino";
import { describe, it } from "vitest";
import { parse } from "yaml";
import { KubernetesStore } from "../../src/store/kubernetes.ts";
import { storeContract } from "./contract.ts";

const CRD_FOLDER = join(import.meta.dirname, "..", "..", "crds");
const CRD_NAMES = ["optasks.odop.io", "opexecutions.odop.io", "opnodes.odop.io"];

type Probe = { ok: true; kubeConfig: KubeConfig } | { ok: false; reason: string };

const probe = await probeCluster();

if (probe.ok) {
  const kubeConfig = probe.kubeConfig;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  storeContract({
    name: `kubernetes (${kubeConfig.getCurrentCluster()?.server ?? "?"})`,
    make: async () => {
      const namespace = `odop-test-${randomBytes(4).toString("hex")}`;
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { "app.kubernetes.io/part-of": "odop-tests" } } } });
      const store = new KubernetesStore({ kubeConfig, log: pino({ level: process.env["ODOP_TEST_LOG"] ?? "silent" }), namespace });
      return {
        store,
        namespace,
        cleanup: async () => {
          await store.close();
          await core.deleteNamespace({ name: namespace });
        },
      };
    },
  });
} else {
  const title = `store contract: kubernetes — SKIPPED: ${probe.reason}`;
  console.warn(title);
  describe.skip(title, () => {
    it("runs the store contract against the API server that KUBECONFIG names", () => undefined);
  });
}

/** Finds a reachable API server with the odop CRDs, installing them if they are missing. */
async function probeCluster(): Promise<Probe> {
  const env = process.env["KUBECONFIG"];
  const files = env !== undefined && env !== "" ? env.split(delimiter).filter((f) => f !== "") : [join(homedir(), ".kube", "config")];
  if (!files.some((f) => existsSync(f))) {
    const reason = env === undefined || env === "" ? "no cluster reachable (KUBECONFIG unset, no ~/.kube/config)" : `no cluster reachable (KUBECONFIG=${env} names no file)`;
    return { ok: false, reason };
  }
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (error) {
    return { ok: false, reason: `no cluster reachable (kubeconfig unreadable: ${messageOf(error)})` };
  }
  const server = kubeConfig.getCurrentCluster()?.server;
  if (server === undefined) return { ok: false, reason: "no cluster reachable (the kubeconfig has no current cluster)" };
  const crds = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const missing: string[] = [];
  for (const name of CRD_NAMES) {
    try {
      await withTimeout(crds.readCustomResourceDefinition({ name }), 5_000);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 404) missing.push(name);
      else if (code === 401 || code === 403) return { ok: false, reason: `cluster at ${server} refuses to show CRDs (HTTP ${String(code)})` };
      else return { ok: false, reason: `no cluster reachable at ${server} (${messageOf(error)})` };
    }
  }
  if (missing.length === 0) return { ok: true, kubeConfig };
  try {
    for (const file of readdirSync(CRD_FOLDER).filter((f) => f.endsWith(".yaml"))) {
      const crd = parse(readFileSync(join(CRD_FOLDER, file), "utf8")) as V1CustomResourceDefinition;
      if (crd.metadata?.name !== undefined && missing.includes(crd.metadata.name)) await crds.createCustomResourceDefinition({ body: crd });
    }
    for (const name of missing) await established(crds, name);
  } catch (error) {
    return { ok: false, reason: `cluster at ${server} lacks the odop CRDs and they could not be applied (${messageOf(error)})` };
  }
  return { ok: true, kubeConfig };
}

async function established(crds: ApiextensionsV1Api, name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const crd = await crds.readCustomResourceDefinition({ name });
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  const first = error.message.split("\n")[0] ?? error.message;
  return detail === undefined || detail === "" ? first : `${first}: ${detail}`;
}
