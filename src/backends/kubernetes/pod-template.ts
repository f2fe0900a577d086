/**
 * Merges an operator's pod template (operator-engine's job templates, read from a
 * ConfigMap) under the pod odop builds. The template supplies what odop has no opinion
 * on — priorityClassName, serviceAccountName, runAsUser/fsGroup, extra volumes and
 * mounts, extra env, ephemeral-storage, dnsPolicy, activeDeadlineSeconds — and odop's
 * fields always win:
 *
 * - metadata: only the template's labels and annotations are kept, under odop's.
 * - placement is odop's: the template's nodeName, nodeSelector, affinity and
 *   schedulerName are dropped (odop placed the pod; a nodeSelector the node does not
 *   match would make the kubelet refuse it). Tolerations and imagePullSecrets are joined.
 * - volumes: the template's, except any with the name of one of odop's.
 * - securityContext (pod and container): the template's fields, with odop's on top.
 * - containers are merged by name into odop's stage containers (configure, run,
 *   publish, done); a template container with another name is an InvalidTemplate error,
 *   since an extra container would run beside (or before) odop's stages and keep the pod
 *   from ending. image, command, args and workingDir are odop's, even where odop leaves
 *   one unset (the image's entrypoint); env is the template's then odop's (odop wins on a
 *   name); volumeMounts are the template's except those on one of odop's paths;
 *   resources are merged per resource name, odop's winning. Probes, lifecycle hooks and
 *   restartPolicy are dropped: they do not belong to run-to-completion stages.
 */
import type { V1Container, V1EnvVar, V1LocalObjectReference, V1ObjectMeta, V1Pod, V1PodSpec, V1Toleration, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { PodSpecError } from "./errors.ts";

/** A pod template: any part of a pod (containers need only a name). */
export type PodTemplate = { metadata?: V1ObjectMeta; spec?: Partial<V1PodSpec> };

/** Names of the containers odop puts in a stage pod; a template may only name these. */
export const STAGE_CONTAINER_NAMES = ["configure", "run", "publish", "done"] as const;

const ODOP_OWNED_CONTAINER_FIELDS = ["image", "command", "args", "workingDir"] as const;
const DROPPED_CONTAINER_FIELDS = ["livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "restartPolicy"] as const;
const DROPPED_SPEC_FIELDS = ["nodeName", "nodeSelector", "affinity", "schedulerName", "containers", "initContainers"] as const;

/** The pod `odop` with `template` merged under it; neither argument is modified. */
export function mergePodTemplate(template: PodTemplate | undefined, odop: V1Pod): V1Pod {
  if (template === undefined) return odop;
  const tSpec: Partial<V1PodSpec> = template.spec ?? {};
  const oSpec: V1PodSpec = odop.spec ?? { containers: [] };
  const known = new Set<string>(STAGE_CONTAINER_NAMES);
  const tContainers = [...(tSpec.initContainers ?? []), ...(tSpec.containers ?? [])];
  const unknown = tContainers.map((c) => c.name).filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new PodSpecError(
      "InvalidTemplate",
      `the pod template has containers ${unknown.join(", ")}; it may only configure odop's stage containers ${STAGE_CONTAINER_NAMES.join(", ")}`,
    );
  }
  const byName = new Map(tContainers.map((c) => [c.name, c]));
  const merge = (c: V1Container) => mergeContainer(byName.get(c.name), c);

  const spec: V1PodSpec = { ...omit(tSpec, DROPPED_SPEC_FIELDS), ...oSpec, containers: oSpec.containers.map(merge) };
  if (oSpec.initContainers !== undefined) spec.initContainers = oSpec.initContainers.map(merge);
  const odopVolumes = new Set((oSpec.volumes ?? []).map((v) => v.name));
  setList(spec, "volumes", [...(tSpec.volumes ?? []).filter((v) => !odopVolumes.has(v.name)), ...(oSpec.volumes ?? [])] satisfies V1Volume[]);
  setList(spec, "tolerations", [...(tSpec.tolerations ?? []), ...(oSpec.tolerations ?? [])] satisfies V1Toleration[]);
  const secrets = [...new Set([...(tSpec.imagePullSecrets ?? []), ...(oSpec.imagePullSecrets ?? [])].map((s) => s.name ?? ""))].filter((n) => n !== "");
  setList(spec, "imagePullSecrets", secrets.map((name) => ({ name })) satisfies V1LocalObjectReference[]);
  if (tSpec.securityContext !== undefined || oSpec.securityContext !== undefined) {
    spec.securityContext = { ...tSpec.securityContext, ...oSpec.securityContext };
  }

  const labels = { ...template.metadata?.labels, ...odop.metadata?.labels };
  const annotations = { ...template.metadata?.annotations, ...odop.metadata?.annotations };
  const metadata = { ...odop.metadata };
  if (Object.keys(labels).length > 0) metadata.labels = labels;
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  return { ...odop, metadata, spec };
}

function mergeContainer(template: V1Container | undefined, odop: V1Container): V1Container {
  if (template === undefined) return odop;
  const merged: V1Container = { ...omit(template, [...ODOP_OWNED_CONTAINER_FIELDS, ...DROPPED_CONTAINER_FIELDS]), ...odop };
  const odopEnv = new Set((odop.env ?? []).map((e) => e.name));
  setList(merged, "env", [...(template.env ?? []).filter((e) => !odopEnv.has(e.name)), ...(odop.env ?? [])] satisfies V1EnvVar[]);
  const odopPaths = new Set((odop.volumeMounts ?? []).map((m) => m.mountPath));
  setList(merged, "volumeMounts", [...(template.volumeMounts ?? []).filter((m) => !odopPaths.has(m.mountPath)), ...(odop.volumeMounts ?? [])] satisfies V1VolumeMount[]);
  const requests = { ...template.resources?.requests, ...odop.resources?.requests };
  const limits = { ...template.resources?.limits, ...odop.resources?.limits };
  const resources: NonNullable<V1Container["resources"]> = { ...template.resources, ...odop.resources };
  delete resources.requests;
  delete resources.limits;
  if (Object.keys(requests).length > 0) resources.requests = requests;
  if (Object.keys(limits).length > 0) resources.limits = limits;
  if (Object.keys(resources).length > 0) merged.resources = resources;
  else delete merged.resources;
  if (template.securityContext !== undefined || odop.securityContext !== undefined) {
    merged.securityContext = { ...template.securityContext, ...odop.securityContext };
  }
  return merged;
}

function omit<T extends object, K extends keyof T>(object: T, keys: readonly K[]): Omit<T, K> {
  const copy = { ...object };
  for (const k of keys) delete copy[k];
  return copy;
}

/** Sets `object[key]` to `list`, or removes the key when the list is empty. */
function setList<T extends object, K extends keyof T>(object: T, key: K, list: NonNullable<T[K]> & unknown[]): void {
  if (list.length > 0) object[key] = list;
  else delete object[key];
}
