/**
 * The chart installed for real (helm v4, the binary the chart tests use) on the test
 * control plane: install with the default values, upgrade with agents enabled, uninstall
 * with the CRDs kept. helm install and upgrade fail when the API server refuses any
 * rendered object, so every object is checked by the server, not only templated. The
 * kube-scheduler binds the controller's and agents' pods to this file's kwok nodes.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tools } from "../deploy/tools.ts";
import { cluster, unavailable } from "../support/cluster.ts";
import { eventually } from "../support/engine.ts";
import { deleteKwokNodes, kubectl, kwokNodes, suiteId } from "../support/k8s/fixtures.ts";

const run = promisify(execFile);
const probe = cluster();
const CHART = "charts/odop";

if (!probe.ok) {
  unavailable("helm install of charts/odop on the test control plane", "installs, upgrades and uninstalls the chart", probe.reason);
} else {
  const { kubeConfig, kubeconfigPath } = probe;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const suite = suiteId("helm");
  const release = suite;
  const namespace = `${suite}-system`;
  const agentsNamespace = `${suite}-agents`;
  // Confine the chart's pods to this file's kwok nodes, so other files' nodes keep their capacity.
  const placement = [`nodeSelector.odop\\.test/suite=${suite}`, `agents.nodeSelector.odop\\.test/suite=${suite}`, `agents.namespace=${agentsNamespace}`];

  const helm = async (args: string[]): Promise<string> => {
    try {
      const { stdout } = await run(tools().helm, [...args, "--kubeconfig", kubeconfigPath], { maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string };
      throw new Error(`helm ${args.join(" ")}: ${(e.stderr ?? "").trim()}\n${(e.stdout ?? "").slice(-2000)}`, { cause: error });
    }
  };
  const sets = (values: string[]) => values.flatMap((v) => ["--set", v]);

  describe(`helm on ${probe.server}`, () => {
    beforeAll(async () => {
      await kwokNodes(kubeConfig, suite, 2, { cpu: 8 });
    }, 60_000);
    afterAll(async () => {
      await helm(["uninstall", release, "--namespace", namespace, "--ignore-not-found"]).catch(() => undefined);
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
      await core.deleteNamespace({ name: agentsNamespace }).catch(() => undefined);
      await deleteKwokNodes(kubeConfig, suite).catch(() => undefined);
    }, 120_000);

    it("installs with the default values: two controller replicas Ready on the kwok nodes, RBAC, the pod template", { timeout: 180_000 }, async () => {
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } } });
      const out = await helm(["install", release, CHART, "--namespace", namespace, ...sets(placement), "--wait", "--timeout", "150s"]);
      expect(out).toContain("STATUS: deployed");
      const deployments = (await apps.listNamespacedDeployment({ namespace })).items;
      expect(deployments.map((d) => [d.spec?.replicas, d.status?.readyReplicas])).toEqual([[2, 2]]);
      const pods = (await core.listNamespacedPod({ namespace })).items;
      for (const pod of pods) expect(pod.spec?.nodeName, pod.metadata?.name).toMatch(new RegExp(`^${suite}-n\\d$`));
      expect((await core.listNamespacedServiceAccount({ namespace })).items.map((s) => s.metadata?.name)).toContain(`${release}-odop-controller`);
      const roles = (await rbac.listClusterRole({ labelSelector: `app.kubernetes.io/instance=${release}` })).items;
      expect(roles.length).toBeGreaterThan(0);
      expect((await core.listNamespacedConfigMap({ namespace })).items.map((c) => c.metadata?.name)).toContain(`${release}-odop-pod-templates`);
      // No agents by default.
      expect((await core.listNamespace()).items.map((n) => n.metadata?.name)).not.toContain(agentsNamespace);
    });

    it("upgrades to node agents: a DaemonSet in its privileged namespace, one agent per node, the controller's ingest Service", { timeout: 180_000 }, async () => {
      const token = Math.random().toString(16).slice(2).repeat(4);
      const out = await helm(["upgrade", release, CHART, "--namespace", namespace, ...sets([...placement, "agents.enabled=true", "replicas=1", "agents.tokenSecret.create=true", `agents.tokenSecret.token=${token}`]), "--wait", "--timeout", "150s"]);
      expect(out).toContain("STATUS: deployed");
      const agents = await core.readNamespace({ name: agentsNamespace });
      expect(agents.metadata?.labels?.["pod-security.kubernetes.io/enforce"]).toBe("privileged");
      const daemonSets = (await apps.listNamespacedDaemonSet({ namespace: agentsNamespace })).items;
      expect(daemonSets).toHaveLength(1);
      await eventually(
        async () => {
          const ds = (await apps.listNamespacedDaemonSet({ namespace: agentsNamespace })).items[0];
          return ds?.status?.numberReady === 2 && ds.status.desiredNumberScheduled === 2 ? true : undefined;
        },
        "an agent Ready on each of the 2 kwok nodes",
        60_000,
      );
      const services = (await core.listNamespacedService({ namespace })).items.map((s) => s.metadata?.name);
      expect(services).toContain(`${release}-odop-controller-agents`);
      const deployment = (await apps.listNamespacedDeployment({ namespace })).items[0];
      expect(deployment?.spec?.replicas).toBe(1);
      const env = deployment?.spec?.template.spec?.containers[0]?.env ?? [];
      expect(env.find((e) => e.name === "ODOP_INGEST_PORT")?.value).toBe("8470");
    });

    it("uninstalls the release and keeps the CRDs", { timeout: 180_000 }, async () => {
      const out = await helm(["uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s"]);
      expect(out).toMatch(/uninstalled/);
      await eventually(async () => ((await apps.listNamespacedDeployment({ namespace })).items.length === 0 ? true : undefined), "the Deployment gone", 60_000);
      expect((await rbac.listClusterRole({ labelSelector: `app.kubernetes.io/instance=${release}` })).items).toEqual([]);
      const crds = await kubectl(kubeconfigPath, ["get", "crd", "optasks.odop.io", "opexecutions.odop.io", "opnodes.odop.io", "-o", "name"]);
      expect(crds.trim().split("\n")).toHaveLength(3);
    });
  });
}
