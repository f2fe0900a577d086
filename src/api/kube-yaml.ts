/**
 * YAML for Kubernetes tools. kubectl, Helm and the API server read YAML with Go's
 * YAML 1.1 rules, in which an unquoted on/off/yes/no/y/n is a boolean: a CRD property
 * written `on:` arrived as "true" and a manifest's `on: Succeeded` as `true: Succeeded`.
 * Every YAML odop writes for them (CRDs, deploy/, the chart, pod templates) goes through
 * here, which quotes such strings.
 */
import { stringify } from "yaml";

export function kubernetesYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, version: "1.1" });
}
