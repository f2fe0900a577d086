/**
 * The CRDs on the test control plane's real API server: applied with kubectl and
 * Established, every example accepted by `kubectl apply --dry-run=server`, and invalid
 * manifests refused by the server on the same fields `odop validate` names.
 */
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { formatPath, validateObject } from "../../src/api/validate.ts";
import { cluster, unavailable } from "../support/cluster.ts";
import { kubectl, suiteId } from "../support/k8s/fixtures.ts";
import { EXAMPLES_DIR, exampleDocuments, task, TASK_CASES } from "../support/manifests.ts";

const probe = cluster();

if (!probe.ok) {
  unavailable("the CRDs on the test control plane", "are Established and accept the examples", probe.reason);
} else {
  const { kubeConfig, kubeconfigPath } = probe;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const objects = kubeConfig.makeApiClient(CustomObjectsApi);
  const namespace = suiteId("crds");
  // The examples live in namespace climate; the dry run needs it to exist.
  const exampleNamespaces = [...new Set(exampleDocuments().map(({ doc }) => (doc["metadata"] as { namespace?: string } | undefined)?.namespace).filter((n): n is string => n !== undefined))];

  describe(`the CRDs on ${probe.server}`, () => {
    beforeAll(async () => {
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      for (const ns of exampleNamespaces) await core.createNamespace({ body: { metadata: { name: ns } } }).catch(() => undefined);
    });
    afterAll(async () => {
      await core.deleteNamespace({ name: namespace });
    });

    it("are applied with kubectl (again: unchanged) and Established, with the names and categories of DESIGN.md", async () => {
      const out = await kubectl(kubeconfigPath, ["apply", "-f", `${EXAMPLES_DIR}/../crds`]);
      expect(out.trim().split("\n").sort()).toEqual([
        "customresourcedefinition.apiextensions.k8s.io/opexecutions.odop.io unchanged",
        "customresourcedefinition.apiextensions.k8s.io/opnodes.odop.io unchanged",
        "customresourcedefinition.apiextensions.k8s.io/optasks.odop.io unchanged",
      ]);
      const crds = JSON.parse(await kubectl(kubeconfigPath, ["get", "crd", "optasks.odop.io", "opexecutions.odop.io", "opnodes.odop.io", "-o", "json"])) as {
        items: { spec: { names: { kind: string; shortNames?: string[]; categories?: string[] }; scope: string }; status: { conditions: { type: string; status: string }[] } }[];
      };
      for (const crd of crds.items) {
        expect(crd.status.conditions.find((c) => c.type === "Established")?.status, crd.spec.names.kind).toBe("True");
        expect(crd.status.conditions.find((c) => c.type === "NamesAccepted")?.status, crd.spec.names.kind).toBe("True");
        expect(crd.spec.names.categories).toContain("odop");
      }
      expect(Object.fromEntries(crds.items.map((c) => [c.spec.names.kind, [c.spec.scope, c.spec.names.shortNames?.[0]]]))).toEqual({
        OpTask: ["Namespaced", "optask"],
        OpExecution: ["Namespaced", "opexec"],
        OpNode: ["Cluster", expect.any(String)],
      });
      // kubectl resolves the short names through discovery.
      await kubectl(kubeconfigPath, ["get", "optask,opexec", "-n", namespace]);
    });

    it("accept every example with kubectl apply --dry-run=server", async () => {
      const out = await kubectl(kubeconfigPath, ["apply", "--dry-run=server", "-R", "-f", EXAMPLES_DIR]);
      const lines = out.trim().split("\n");
      expect(lines.length).toBe(exampleDocuments().length);
      for (const line of lines) expect(line).toMatch(/ (created|configured|unchanged) \(server dry run\)$/);
    });

    // The server names a CEL rule's problem at its fieldPath and a schema problem at the field.
    it.each(TASK_CASES)("%s: the server refuses exactly the fields odop validate names", async (_name, edit) => {
      const manifest = task(edit);
      manifest["metadata"] = { ...(manifest["metadata"] as object), namespace };
      const zod = validateObject(manifest).problems.map((p) => formatPath(p.path));
      let refused: string[] = [];
      let serverMessage = "";
      try {
        await objects.createNamespacedCustomObject({ group: "odop.io", version: "v1alpha1", namespace, plural: "optasks", body: manifest, dryRun: "All" });
      } catch (error) {
        const e = error as { code?: number; body?: string };
        expect(e.code, `${String(e.code)}: ${e.body ?? ""}`).toBe(422);
        const status = JSON.parse(e.body ?? "{}") as { message?: string; details?: { causes?: { field?: string }[] } };
        serverMessage = status.message ?? "";
        refused = (status.details?.causes ?? []).map((c) => c.field ?? "");
      }
      expect(new Set(refused), `server: ${serverMessage}\nmanifest: ${stringify(manifest)}`).toEqual(new Set(zod));
    });
  });
}
