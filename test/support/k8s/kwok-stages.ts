/**
 * What kwok makes of nodes and pods in the test control plane: its Stage configuration,
 * written for odop's tests (docs/k8s-harness.md, "Simulated nodes and pods").
 *
 * Nodes created with the label `type=kwok` become Ready with the allocatable the test
 * gave them, and kwok renews their Leases.
 *
 * Pods on those nodes go through the phases a kubelet would give them, one container at
 * a time: init containers in order (each Running, then Terminated), then the containers
 * together. What a container does is chosen by the tag of its image:
 *
 * | tag              | the container                                   |
 * | ---------------- | ----------------------------------------------- |
 * | `exit-N`         | runs briefly, then exits with code N (N ≠ 0: with terminationMessagePolicy FallbackToLogsOnError, the kubelet's 4 KiB log tail as its message) |
 * | `sleep`          | runs until the pod is deleted                   |
 * | `run-D`          | runs for the duration D (e.g. `run-8s`, `run-500ms`), then exits 0 |
 * | `oom`            | is OOMKilled (exit code 137)                    |
 * | `pull-error`     | never starts: waiting with ErrImagePull         |
 * | `rejected-gpu`   | (any container) the kubelet refuses the pod at admission: Failed, reason OutOfnvidia.com/gpu |
 * | anything else    | exits 0 in a pod with restartPolicy Never and in init containers; otherwise runs for ever (a Deployment's pod) |
 *
 * A failed init container fails the pod (restartPolicy Never); a pod whose containers
 * all exited is Succeeded when every exit code is 0, else Failed. A deleted pod is gone
 * a moment later (no grace period is simulated).
 *
 * One jq expression (`STEP`) classifies a pod into the step that comes next; each Stage
 * matches one value of it, so exactly one Stage applies to a pod at any time.
 */

/** How long each simulated step takes. */
const STEP_MS = 150;

const BEHAVIOUR_JQ = String.raw`def behaviour($rp): ((.image // "") | capture(":(?<t>[^:/]+)$").t // "") as $t
  | if ($t | test("^(exit-[0-9]+|sleep|oom|pull-error)$")) then $t elif ($t | test("^run-[0-9]+(ms|s|m)$")) then "exit-0" elif $rp == "Never" then "exit-0" else "sleep" end;`;

/** How long the running containers of `statuses` run before they exit (the `run-D` tag), or null for the step's default. */
const RUN_FOR = (statuses: string) =>
  `[${statuses}[]? | select(.state.running != null) | (.image // "") | capture(":run-(?<d>[0-9]+(ms|s|m))$").d] | first`;

/** The next step of a pod: reject, create, init-start, init-exit, start, exit, delete, or none. */
const STEP = String.raw`${BEHAVIOUR_JQ}
(.spec.restartPolicy // "Always") as $rp
| if .metadata.deletionTimestamp != null then (if ((.metadata.finalizers // []) | length) == 0 then "delete" else "none" end)
  elif (.status.podIP // "") == "" and (.status.phase // "Pending") == "Pending" and ([(.spec.initContainers // [])[], .spec.containers[] | select(((.image // "") | endswith(":rejected-gpu")))] | length) > 0 then "reject"
  elif (.status.podIP // "") == "" and (.status.phase // "Pending") == "Pending" then "create"
  elif .status.phase == "Pending" then
    ([.status.initContainerStatuses[]? | select((.state.terminated.exitCode // -1) != 0)] | first) as $next
    | if $next == null then
        (if ([.status.containerStatuses[]? | select(.state.waiting.reason == "PodInitializing" or .state.waiting.reason == "ContainerCreating")] | length) > 0 then "start" else "none" end)
      elif $next.state.waiting.reason == "PodInitializing" then "init-start"
      elif $next.state.running != null and ($next | behaviour("Never")) != "sleep" then "init-exit"
      else "none" end
  elif .status.phase == "Running" then
    (if ([.spec.containers[] | behaviour($rp) | select(. != "sleep")] | length) > 0 and ([.spec.containers[] | behaviour($rp)] | all(. != "sleep")) then "exit" else "none" end)
  else "none" end`;

// Go template helpers (kwok renders statusTemplate with text/template and sprig, which has no include).
/** The tag of the image `img` names, as a template pipeline. */
const tagOf = (img: string) => `(regexFind ":[^:/]+$" ${img} | trimPrefix ":")`;

/** A terminated state for the container whose image is `$img`, with `$now`. */
const TERMINATED = (img: string) => `{{- $t := ${tagOf(img)} -}}
{{- $code := 0 -}}{{- $reason := "Completed" -}}
{{- if hasPrefix "exit-" $t -}}{{- $code = trimPrefix "exit-" $t | atoi -}}{{- if ne $code 0 -}}{{- $reason = "Error" -}}{{- end -}}{{- end -}}
{{- if eq $t "oom" -}}{{- $code = 137 -}}{{- $reason = "OOMKilled" -}}{{- end -}}`;

/**
 * The message a kubelet gives a container that failed with terminationMessagePolicy
 * FallbackToLogsOnError: the tail of its log, at most 4096 bytes. `$policy` and `$code`
 * must be set; the log is 80 numbered lines.
 */
const LOG_TAIL = `{{- if and (ne $code 0) (eq $policy "FallbackToLogsOnError") }}
      message: {{ $tail := "" }}{{ range $n := until 80 }}{{ $tail = printf "%sline %d of the container's log, kept by the kubelet for FallbackToLogsOnError\\n" $tail $n }}{{ end }}{{ trunc -4096 $tail | Quote }}
{{- end }}`;

function stage(name: string, step: string, steps: string, durationFrom?: string): string {
  const from = durationFrom === undefined ? "" : `\n    durationFrom:\n      expressionFrom: ${JSON.stringify(durationFrom)}`;
  return `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: odop-pod-${name}
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: ${JSON.stringify(STEP)}
      operator: In
      values: [${JSON.stringify(step)}]
  delay:
    durationMilliseconds: ${STEP_MS}${from}
${steps}`;
}

const indent = (text: string, spaces: number) =>
  text
    .split("\n")
    .map((l) => (l === "" ? l : " ".repeat(spaces) + l))
    .join("\n");

const statusTemplate = (template: string) => `  next:
    statusTemplate: |
${indent(template, 6)}
`;

const WAITING = (reason: string) => `ready: false
  restartCount: 0
  started: false
  state:
    waiting:
      reason: ${reason}`;

const POD_CREATE = stage(
  "create",
  "create",
  `  next:
    event:
      type: Normal
      reason: Started
      message: Pod started by kwok (odop test control plane)
    statusTemplate: |
${indent(
  `{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
- lastTransitionTime: {{ $now | Quote }}
  status: {{ if .spec.initContainers }}"False"{{ else }}"True"{{ end }}
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: ContainersReady
{{ if .spec.initContainers }}
initContainerStatuses:
{{ range .spec.initContainers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ${WAITING("PodInitializing")}
{{ end }}
{{ end }}
containerStatuses:
{{ $reason := "ContainerCreating" }}{{ if .spec.initContainers }}{{ $reason = "PodInitializing" }}{{ end }}
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ${WAITING("{{ $reason }}")}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
startTime: {{ $now | Quote }}
phase: Pending`,
  6,
)}
`,
);

// The first init container that has not exited 0 starts (or fails to pull).
const INIT_START = stage(
  "init-start",
  "init-start",
  statusTemplate(`{{ $now := Now }}
{{ $found := false }}
initContainerStatuses:
{{ range .status.initContainerStatuses }}
{{ if and (not $found) (ne (int (dig "state" "terminated" "exitCode" -1 .)) 0) }}
{{ $found = true }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  restartCount: 0
{{ if eq ${tagOf(".image")} "pull-error" }}
  ready: false
  started: false
  state:
    waiting:
      reason: ErrImagePull
      message: {{ printf "Failed to pull image %q: not found (kwok: the image tag says pull-error)" .image | Quote }}
{{ else }}
  ready: false
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
{{ else }}
- {{ toJson . }}
{{ end }}
{{ end }}`),
);

// The running init container exits; a failure fails the pod, the last success initializes it.
const INIT_EXIT = stage(
  "init-exit",
  "init-exit",
  statusTemplate(`{{ $now := Now }}
{{ $failed := false }}
{{ $pending := false }}
{{ $root := . }}
initContainerStatuses:
{{ range $i, $s := .status.initContainerStatuses }}
{{ with $s }}
{{ if .state.running }}
${TERMINATED(".image")}
{{ $policy := (index $root.spec.initContainers $i).terminationMessagePolicy }}
{{ if ne $code 0 }}{{ $failed = true }}{{ end }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: {{ $code }}
      reason: {{ $reason }}
      startedAt: {{ .state.running.startedAt | Quote }}
      finishedAt: {{ $now | Quote }}
${LOG_TAIL}
{{ else }}
{{ if dig "state" "waiting" "" . }}{{ $pending = true }}{{ end }}
- {{ toJson . }}
{{ end }}
{{ end }}
{{ end }}
{{ if $failed }}
phase: Failed
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: PodFailed
  type: Ready
{{ else if not $pending }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ${WAITING("ContainerCreating")}
{{ end }}
{{ end }}`), RUN_FOR(".status.initContainerStatuses"),
);

const START = stage(
  "start",
  "start",
  statusTemplate(`{{ $now := Now }}
{{ $pull := false }}
{{ range .spec.containers }}{{ if eq ${tagOf(".image")} "pull-error" }}{{ $pull = true }}{{ end }}{{ end }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
{{ if not $pull }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
phase: Running
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  restartCount: 0
{{ if eq ${tagOf(".image")} "pull-error" }}
  ready: false
  started: false
  state:
    waiting:
      reason: ErrImagePull
      message: {{ printf "Failed to pull image %q: not found (kwok: the image tag says pull-error)" .image | Quote }}
{{ else }}
  ready: true
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
{{ end }}`),
);

const EXIT = stage(
  "exit",
  "exit",
  statusTemplate(`{{ $now := Now }}
{{ $failed := false }}
{{ $root := . }}
containerStatuses:
{{ range $i, $s := .status.containerStatuses }}
{{ with $s }}
${TERMINATED(".image")}
{{ $policy := (index $root.spec.containers $i).terminationMessagePolicy }}
{{ if ne $code 0 }}{{ $failed = true }}{{ end }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: {{ $code }}
      reason: {{ $reason }}
      startedAt: {{ dig "state" "running" "startedAt" $now . | Quote }}
      finishedAt: {{ $now | Quote }}
${LOG_TAIL}
{{ end }}
{{ end }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: PodCompleted
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: PodCompleted
  type: ContainersReady
phase: {{ if $failed }}Failed{{ else }}Succeeded{{ end }}`), RUN_FOR(".status.containerStatuses"),
);

const DELETE = stage("delete", "delete", "  next:\n    delete: true\n");

// What a kubelet does with a pod that asks for an extended resource its node lacks.
const REJECT = stage(
  "reject",
  "reject",
  statusTemplate(`{{ $now := Now }}
phase: Failed
reason: OutOfnvidia.com/gpu
message: "Pod was rejected: Node didn't have enough resource: nvidia.com/gpu, requested: 1, used: 0, capacity: 0"
startTime: {{ $now | Quote }}`),
);

const NODE_INITIALIZE = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: odop-node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
${indent(
  `{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
{{ if not .status.addresses }}
addresses:
- address: {{ NodeIP | Quote }}
  type: InternalIP
- address: {{ NodeName | Quote }}
  type: Hostname
{{ end }}
allocatable:
{{ with .status.allocatable }}{{ YAML . 1 }}{{ else }}  cpu: "8"
  memory: 32Gi
  pods: "110"{{ end }}
capacity:
{{ with .status.capacity }}{{ YAML . 1 }}{{ else }}{{ with .status.allocatable }}{{ YAML . 1 }}{{ else }}  cpu: "8"
  memory: 32Gi
  pods: "110"{{ end }}{{ end }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
phase: Running`,
  6,
)}
`;

/** The whole kwok configuration file: every Stage, as YAML documents. */
export function kwokStagesYaml(): string {
  return [NODE_INITIALIZE, REJECT, POD_CREATE, INIT_START, INIT_EXIT, START, EXIT, DELETE].join("---\n");
}
