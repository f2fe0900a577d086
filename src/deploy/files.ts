/** Every file `npm run manifests` writes, with its path from the repository root and its text. */
import { kubernetesYaml } from "../api/kube-yaml.ts";
import { agentManifests } from "./agents.ts";
import { chartCrds, chartYaml, GENERATED, rbacTemplate } from "./chart.ts";
import { controllerManifests, rbacManifests } from "./controller.ts";

export type GeneratedFile = { path: string; text: string };

function stream(manifests: readonly Record<string, unknown>[]): string {
  return GENERATED + manifests.map((m) => `---\n${kubernetesYaml(m)}`).join("");
}

export function generatedFiles(): GeneratedFile[] {
  return [
    { path: "deploy/rbac.yaml", text: stream(rbacManifests()) },
    { path: "deploy/controller.yaml", text: stream(controllerManifests()) },
    { path: "deploy/agents.yaml", text: stream(agentManifests()) },
    { path: "charts/odop/Chart.yaml", text: chartYaml() },
    { path: "charts/odop/templates/rbac.yaml", text: rbacTemplate() },
    ...chartCrds().map(({ file, text }) => ({ path: `charts/odop/crds/${file}`, text })),
  ];
}
