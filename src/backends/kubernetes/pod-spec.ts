/**
 * The pod of one attempt of an execution (pure: no API calls).
 *
 * One attempt is one pod, `<execution>-<attempt>`, whose stages are its containers in
 * order: the init containers `configure` (only when the task has inputs) and `run`, then
 * the container `publish` (or a no-op `done` when there are no outputs). Init containers
 * run one after the other and each starts only when the one before exited 0; with
 * restartPolicy Never a failed stage fails the pod and nothing after it runs. All of them
 * mount one workspace volume at /odop/workspace (inputs/ outputs/ logs/, created by
 * configure): an emptyDir by default, or a PVC with subPath <execution> when configured,
 * so the attempts of one execution share a workspace there as they do on the local backend.
 *
 * Decisions, as contracts:
 * - Placement: odop already chose the node and cores, so the pod names the node
 *   (spec.nodeName) and bypasses the kube-scheduler; the kubelet still admits it, and a
 *   refusal (OutOfcpu, NodeAffinity…) comes back as a Failed pod (pod-status.ts).
 * - Stage specs reach configure/publish through the downward API: the StageSpec JSON is
 *   the annotation odop.io/<stage>-spec, projected as the file /odop/stage/<stage>.json,
 *   and the container runs `odop stage /odop/stage/<stage>.json`. No shell is needed in
 *   the image, the spec is visible with `kubectl get pod -o yaml`, and it is kept out of
 *   the workspace (like the local backend's state/ folder), so the run stage never sees it
 *   and publishing "." never ships it. The price: all annotations together must stay
 *   under 256 KiB, checked here.
 * - The run stage: run.command → command (argv, no shell); run.script → `bash -c <script>
 *   odop-script <args…>`, the script one argv element, never interpolated; module and
 *   function → `python3 -c <caller> <module> <function> <args…>`; an image alone → its
 *   entrypoint with args. workingDir defaults to the workspace; relative ones are inside it.
 * - Environment: every stage gets the ODOP_* variables of stage-plans.ts (paths inside
 *   the pod), then run.env, then options.env (a later name wins); valueFrom.secretKeyRef
 *   becomes the container's secretKeyRef, so secrets never appear in the pod object.
 * - Resources: run requests requirements.*.min and limits requirements.*.max (cpu,
 *   memory; nvidia.com/gpu = gpu.max, else gpu.min). odop's own containers take the same
 *   cpu and memory, so they add nothing to the pod's effective request (the largest init
 *   container or the sum of the containers) and cannot break its QoS class.
 * - Pinning: Kubernetes pins a container only with the kubelet's static CPU manager, a
 *   Guaranteed pod (every container's requests equal its limits) and a whole number of
 *   cpus, and the kubelet then picks the cores itself. The annotation odop.io/cpuset
 *   records odop's cores; `pinning` says whether the kubelet can pin and why not.
 * - Time: requirements.time is enforced by the controller on the run stage (its start,
 *   less paused time), as for every backend; activeDeadlineSeconds would count configure,
 *   publish, image pulls and pauses too, so odop does not set it (a template may, as an
 *   outer bound).
 * - Failures: every container has terminationMessagePolicy FallbackToLogsOnError, so
 *   a stage that fails without writing a termination message leaves the last lines of
 *   its log (at most 4 KiB, the kubelet's cap) in the pod status, which the execution's
 *   message carries (the controller needs no pods/log permission).
 * - Security: the pod runs as non-root with the RuntimeDefault seccomp profile and no
 *   service account token; every container drops ALL capabilities and cannot escalate;
 *   odop's own images also get a read-only root file system (with an emptyDir /tmp).
 *   A user image that runs as root needs a template with runAsUser; stages that write
 *   each other's files should share a user: set runAsUser/fsGroup in the template.
 */
import { posix } from "node:path";
import type { V1Container, V1EnvVar, V1Pod, V1ResourceRequirements, V1Toleration, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { formatCpuset } from "../../api/cpuset.ts";
import { API_VERSION } from "../../api/meta.ts";
import type { OpExecution, StageName } from "../../api/opexecution.ts";
import { PYTHON_CALL, threadCount } from "../run-forms.ts";
import type { OpTask } from "../../api/optask.ts";
import { compareQuantities, parseQuantity } from "../../api/quantity.ts";
import type { StageSpec } from "../../staging/stage-spec.ts";
import { PodSpecError } from "./errors.ts";
import { annotationsProblem, labelKeyProblem, labelValueProblem, objectNameProblem } from "./names.ts";
import { mergePodTemplate, type PodTemplate } from "./pod-template.ts";

/** Where the workspace volume is mounted in every container. */
export const WORKSPACE_PATH = "/odop/workspace";
/** Where configure and publish find their stage spec files. */
export const STAGE_SPEC_DIR = "/odop/stage";

/** Labels on every stage pod; the execution label selects an execution's pods. */
export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  task: "odop.io/task",
  execution: "odop.io/execution",
  executionId: "odop.io/execution-id",
  attempt: "odop.io/attempt",
} as const;

/** Annotations on every stage pod: the cores odop chose, and the stage specs. */
export const ANNOTATIONS = {
  cpuset: "odop.io/cpuset",
  spec: (stage: "configure" | "publish") => `odop.io/${stage}-spec`,
} as const;

/** The container that runs each stage, and whether it is an init container. */
export const STAGE_CONTAINERS: Readonly<Record<StageName, { name: string; init: boolean }>> = {
  configure: { name: "configure", init: true },
  run: { name: "run", init: true },
  publish: { name: "publish", init: false },
};
/** The container that ends a pod whose task has no outputs. */
export const DONE_CONTAINER = "done";

const VOLUMES = { workspace: "workspace", spec: "odop-stage", tmp: "odop-tmp" } as const;

export type WorkspaceVolume = { kind: "emptyDir" } | { kind: "pvc"; claimName: string };

export type StagePodInput = {
  task: OpTask;
  execution: OpExecution;
  /** 1 for the first attempt. */
  attempt: number;
  /** The node odop placed the execution on. */
  node: string;
  /** The cores odop chose on that node. */
  cores: readonly number[];
  /** odop's own image, for configure, publish and done. */
  odopImage: string;
  workspace: WorkspaceVolume;
  imagePullSecrets?: readonly string[];
  tolerations?: readonly V1Toleration[];
  /** The operator's pod template, merged under odop's fields (pod-template.ts). */
  template?: PodTemplate;
  /** How the odop image starts the CLI; default ["odop"]. */
  odopCommand?: readonly string[];
  /** The kubelet's CPU manager policy on the node, when known. */
  cpuManagerPolicy?: "static" | "none";
};

/** Whether the kubelet can pin the run stage to exclusive cores, and why (not). */
export type Pinning = { pinned: boolean; note: string };

export type StagePod = { pod: V1Pod; pinning: Pinning };

/** The pod name of an attempt. */
export function stagePodName(execution: string, attempt: number): string {
  return `${execution}-${attempt}`;
}

/** Builds the pod of one attempt. Throws PodSpecError when it cannot be built as asked. */
export function buildStagePod(input: StagePodInput): StagePod {
  const { task, execution, attempt } = input;
  const executionName = execution.metadata.name ?? "";
  const taskName = task.metadata.name ?? "";
  const name = stagePodName(executionName, attempt);
  const image = task.spec.run.image;
  if (image === undefined) throw new PodSpecError("NoImage", `task ${taskName} has no run.image: the kubernetes backend runs containers`);
  const uid = execution.metadata.uid;
  if (uid === undefined || uid === "") throw new PodSpecError("NoOwnerUid", `execution ${executionName} has no metadata.uid to own its pod`);

  const inputs = task.spec.stages?.configure?.inputs ?? [];
  const outputs = task.spec.stages?.publish?.outputs ?? [];
  const env = stageEnv(input);
  const runResources = resourcesOf(task);
  const stageResources = cpuAndMemory(runResources);
  const odopCommand = input.odopCommand ?? ["odop"];

  const labels: Record<string, string> = {
    [LABELS.managedBy]: "odop",
    [LABELS.task]: taskName,
    [LABELS.execution]: executionName,
    [LABELS.executionId]: execution.spec.executionId,
    [LABELS.attempt]: String(attempt),
  };
  const annotations: Record<string, string> = { [ANNOTATIONS.cpuset]: formatCpuset(input.cores) };
  const specItems: { path: string; fieldRef: { fieldPath: string } }[] = [];
  const odopStage = (stage: "configure" | "publish", stageImage: string | undefined, spec: StageSpec): V1Container => {
    annotations[ANNOTATIONS.spec(stage)] = JSON.stringify(spec);
    specItems.push({ path: `${stage}.json`, fieldRef: { fieldPath: `metadata.annotations['${ANNOTATIONS.spec(stage)}']` } });
    const mounts = [workspaceMount(input.workspace, executionName), { name: VOLUMES.spec, mountPath: STAGE_SPEC_DIR, readOnly: true }];
    return odopContainer(stage, stageImage ?? input.odopImage, stageImage === undefined, [...odopCommand, "stage", `${STAGE_SPEC_DIR}/${stage}.json`], env, mounts, stageResources);
  };

  const initContainers: V1Container[] = [];
  if (inputs.length > 0) {
    initContainers.push(odopStage("configure", task.spec.stages?.configure?.image, { stage: "configure", workspace: WORKSPACE_PATH, inputs }));
  }
  initContainers.push(runContainer(input, image, env, workspaceMount(input.workspace, executionName), runResources));
  const last =
    outputs.length > 0
      ? odopStage("publish", task.spec.stages?.publish?.image, { stage: "publish", workspace: WORKSPACE_PATH, outputs })
      : odopContainer(DONE_CONTAINER, input.odopImage, true, [...odopCommand, "--version"], [], [], stageResources);

  const volumes: V1Volume[] = [
    input.workspace.kind === "pvc" ? { name: VOLUMES.workspace, persistentVolumeClaim: { claimName: input.workspace.claimName } } : { name: VOLUMES.workspace, emptyDir: {} },
    { name: VOLUMES.tmp, emptyDir: {} },
  ];
  if (specItems.length > 0) volumes.push({ name: VOLUMES.spec, downwardAPI: { items: specItems } });

  const odopPod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: execution.metadata.namespace ?? "default",
      labels,
      annotations,
      ownerReferences: [{ apiVersion: API_VERSION, kind: "OpExecution", name: executionName, uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      nodeName: input.node,
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
      initContainers,
      containers: [last],
      volumes,
    },
  };
  if (input.tolerations !== undefined && input.tolerations.length > 0) odopPod.spec!.tolerations = [...input.tolerations];
  if (input.imagePullSecrets !== undefined && input.imagePullSecrets.length > 0) {
    odopPod.spec!.imagePullSecrets = input.imagePullSecrets.map((s) => ({ name: s }));
  }
  const pod = mergePodTemplate(input.template, odopPod);
  checkNames(pod);
  return { pod, pinning: pinningOf(pod, input) };
}

function checkNames(pod: V1Pod): void {
  const problems = [objectNameProblem(pod.metadata?.name ?? "")];
  for (const [k, v] of Object.entries(pod.metadata?.labels ?? {})) problems.push(labelKeyProblem(k), labelValueProblem(v));
  problems.push(annotationsProblem(pod.metadata?.annotations ?? {}));
  const found = problems.filter((p) => p !== undefined);
  if (found.length > 0) throw new PodSpecError("InvalidName", `pod ${pod.metadata?.name ?? ""}: ${found.join("; ")}`);
}

/** ODOP_* (as stage-plans.ts sets them, with the pod's paths), then run.env, then options.env. */
function stageEnv(input: StagePodInput): V1EnvVar[] {
  const { task, execution, cores } = input;
  const threads = String(threadCount(task, cores.length));
  const env = new Map<string, V1EnvVar>();
  const plain: Record<string, string> = {
    ODOP_TASK: task.metadata.name ?? "",
    ODOP_NAMESPACE: execution.metadata.namespace ?? "default",
    ODOP_EXECUTION: execution.metadata.name ?? "",
    ODOP_EXECUTION_ID: execution.spec.executionId,
    ODOP_TRIGGER_REASON: execution.spec.trigger.reason,
    ODOP_TRIGGER_FILES: (execution.spec.trigger.files ?? []).join("\n"),
    ODOP_WORKSPACE: WORKSPACE_PATH,
    ODOP_INPUTS: `${WORKSPACE_PATH}/inputs`,
    ODOP_OUTPUTS: `${WORKSPACE_PATH}/outputs`,
    ODOP_CORES: formatCpuset(cores),
    ODOP_THREADS: threads,
    OMP_NUM_THREADS: threads,
  };
  for (const [name, value] of Object.entries(plain)) env.set(name, { name, value });
  for (const e of [...(task.spec.run.env ?? []), ...(execution.spec.options?.env ?? [])]) {
    if (e.value !== undefined) env.set(e.name, { name: e.name, value: e.value });
    else if (e.valueFrom !== undefined) env.set(e.name, { name: e.name, valueFrom: { secretKeyRef: { name: e.valueFrom.secretKeyRef.name, key: e.valueFrom.secretKeyRef.key } } });
    else env.set(e.name, { name: e.name, value: "" });
  }
  return [...env.values()];
}


function runContainer(input: StagePodInput, image: string, env: V1EnvVar[], workspace: V1VolumeMount, resources: V1ResourceRequirements): V1Container {
  const run = input.task.spec.run;
  const args = input.execution.spec.options?.args ?? run.args ?? [];
  const c: V1Container = {
    name: STAGE_CONTAINERS.run.name,
    image,
    workingDir: run.workingDir === undefined ? WORKSPACE_PATH : posix.isAbsolute(run.workingDir) ? run.workingDir : posix.join(WORKSPACE_PATH, run.workingDir),
    env: withStage(env, STAGE_CONTAINERS.run.name),
    volumeMounts: [workspace],
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  if (run.imagePullPolicy !== undefined) c.imagePullPolicy = run.imagePullPolicy;
  if (run.command !== undefined) c.command = [...run.command];
  else if (run.script !== undefined) c.command = ["bash", "-c", run.script, "odop-script"];
  else if (run.module !== undefined && run.function !== undefined) c.command = ["python3", "-c", PYTHON_CALL, run.module, run.function];
  if (args.length > 0) c.args = [...args];
  if (Object.keys(resources).length > 0) c.resources = resources;
  return c;
}

function odopContainer(
  name: string,
  image: string,
  ownImage: boolean,
  command: string[],
  env: V1EnvVar[],
  mounts: V1VolumeMount[],
  resources: V1ResourceRequirements,
): V1Container {
  const c: V1Container = {
    name,
    image,
    command,
    workingDir: mounts.length > 0 ? WORKSPACE_PATH : "/",
    volumeMounts: [...mounts, { name: VOLUMES.tmp, mountPath: "/tmp" }],
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: ownImage },
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  if (env.length > 0) c.env = withStage(env, name);
  if (Object.keys(resources).length > 0) c.resources = resources;
  return c;
}

/**
 * ODOP_STAGE names the container its processes run in: the node agent's freezer finds a
 * stage container's cgroup by it (src/agent/pod-cgroup.ts), without asking the CRI.
 */
function withStage(env: V1EnvVar[], container: string): V1EnvVar[] {
  return [...env, { name: "ODOP_STAGE", value: container }];
}

function workspaceMount(workspace: WorkspaceVolume, execution: string): V1VolumeMount {
  const mount: V1VolumeMount = { name: VOLUMES.workspace, mountPath: WORKSPACE_PATH };
  if (workspace.kind === "pvc") mount.subPath = execution;
  return mount;
}

const quantity = (q: string | number): string => String(q);

function resourcesOf(task: OpTask): V1ResourceRequirements {
  const r = task.spec.requirements;
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (r?.cpu?.min !== undefined) requests["cpu"] = quantity(r.cpu.min);
  if (r?.memory?.min !== undefined) requests["memory"] = quantity(r.memory.min);
  if (r?.cpu?.max !== undefined) limits["cpu"] = quantity(r.cpu.max);
  if (r?.memory?.max !== undefined) limits["memory"] = quantity(r.memory.max);
  const gpus = r?.gpu?.max ?? r?.gpu?.min;
  if (gpus !== undefined && gpus > 0) limits["nvidia.com/gpu"] = String(gpus);
  const out: V1ResourceRequirements = {};
  if (Object.keys(requests).length > 0) out.requests = requests;
  if (Object.keys(limits).length > 0) out.limits = limits;
  return out;
}

function cpuAndMemory(resources: V1ResourceRequirements): V1ResourceRequirements {
  const pick = (m: Record<string, string> | undefined) => Object.fromEntries(Object.entries(m ?? {}).filter(([k]) => k === "cpu" || k === "memory"));
  const out: V1ResourceRequirements = {};
  const requests = pick(resources.requests);
  const limits = pick(resources.limits);
  if (Object.keys(requests).length > 0) out.requests = requests;
  if (Object.keys(limits).length > 0) out.limits = limits;
  return out;
}

/** Whether the kubelet's static CPU manager can give the run container exclusive cores (on the merged pod). */
function pinningOf(pod: V1Pod, input: StagePodInput): Pinning {
  const cpuset = formatCpuset(input.cores);
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const run = containers.find((c) => c.name === STAGE_CONTAINERS.run.name);
  const no = (why: string): Pinning => ({ pinned: false, note: `cores are not pinned: ${why}; odop.io/cpuset records odop's choice ${cpuset}` });
  const cpuLimit = run?.resources?.limits?.["cpu"];
  if (cpuLimit === undefined) return no("the run container has no cpu limit (set requirements.cpu.min and max to the same whole number)");
  for (const c of containers) {
    for (const resource of ["cpu", "memory"]) {
      const limit = c.resources?.limits?.[resource];
      // The API server defaults a missing request to the limit.
      const request = c.resources?.requests?.[resource] ?? limit;
      if (limit === undefined) return no(`the ${c.name} container has no ${resource} limit, so the pod is not Guaranteed QoS`);
      const [l, q] = [parseQuantity(limit), parseQuantity(request ?? limit)];
      if (l === undefined || q === undefined || compareQuantities(l, q) !== 0) {
        return no(`the ${c.name} container is not Guaranteed QoS (${resource} requests ${request ?? ""} ≠ limits ${limit})`);
      }
    }
  }
  const cpus = parseQuantity(cpuLimit);
  if (cpus === undefined || cpus.den !== 1n) return no(`cpu ${cpuLimit} is not a whole number of cores`);
  if (cpus.num !== BigInt(input.cores.length)) {
    return no(`the run container asks for ${cpus.num} cpus but odop chose ${input.cores.length} cores`);
  }
  if (input.cpuManagerPolicy === "none") return no(`the kubelet on ${input.node} does not run the static CPU manager policy`);
  const kubelet = input.cpuManagerPolicy === "static" ? "the kubelet" : `the kubelet (if it runs --cpu-manager-policy=static on ${input.node})`;
  return {
    pinned: true,
    note: `Guaranteed QoS with ${cpus.num} whole cpus: ${kubelet} pins each stage to ${cpus.num} exclusive cores of its choosing; odop chose ${cpuset}`,
  };
}
