/**
 * A stage's output on Kubernetes: the log of the stage's container in the attempt's pod,
 * read with the user's own credentials (`odop logs --cluster`; the controller has no
 * pods/log permission). The pod of the newest attempt unless one is named.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { StageName } from "../../api/opexecution.ts";
import { LABELS, STAGE_CONTAINERS } from "./pod-spec.ts";

export async function readStageLog(kubeConfig: KubeConfig, namespace: string, execution: string, stage: StageName, attempt?: number): Promise<string> {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const pods = await api.listNamespacedPod({ namespace, labelSelector: `${LABELS.execution}=${execution}` });
  const attemptOf = (labels: Record<string, string> | undefined) => Number(labels?.[LABELS.attempt] ?? 0);
  const candidates = pods.items
    .filter((p) => attempt === undefined || attemptOf(p.metadata?.labels) === attempt)
    .sort((a, b) => attemptOf(b.metadata?.labels) - attemptOf(a.metadata?.labels));
  const pod = candidates[0];
  if (pod?.metadata?.name === undefined) {
    throw new Error(`no pod of ${namespace}/${execution}${attempt === undefined ? "" : ` attempt ${attempt}`} (a succeeded attempt's pod is deleted; events remain: kubectl describe opexec ${execution} -n ${namespace})`);
  }
  return api.readNamespacedPodLog({ namespace, name: pod.metadata.name, container: STAGE_CONTAINERS[stage].name });
}
