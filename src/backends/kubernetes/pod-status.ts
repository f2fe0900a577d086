/**
 * What a stage pod's status says about each stage (pure: no API calls). The pod is the
 * one pod-spec.ts builds: configure and run as init containers, publish (or done) as the
 * container.
 *
 * The states are the backend's StageState, each with an optional `reason` and `message`
 * (PodStageState) so the controller can say why; the StageState union itself is not
 * extended. A stage that can no longer succeed is always reported as ended — never left
 * waiting: a container stuck on an image or its configuration, a pod the kubelet refused
 * or evicted, a node that stopped reporting, a pod deleted under odop.
 */
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { StageName } from "../../api/opexecution.ts";
import { STAGES } from "../../api/opexecution.ts";
import type { StageState } from "../types.ts";
import { STAGE_CONTAINERS } from "./pod-spec.ts";

/** A StageState with why it is so, when the pod says. */
export type PodStageState = StageState & { reason?: string; message?: string };

/**
 * Reasons odop sets on a PodStageState:
 * - `OutOfMemory` (exited 137): the container was OOM-killed (kubelet reason OOMKilled).
 * - `PodGone` (lost): the pod odop created is not there any more.
 * - `PodDeleted` (lost): the pod is being deleted, not by odop, and no DisruptionTarget
 *   condition says why.
 * - `NodeLost` (lost): the pod's phase is Unknown (its node stopped reporting) and it has
 *   no reason of its own.
 * - `ContainerStatusUnknown` (lost): the kubelet could not find the container any more.
 * - `Pending` (absent): the pod exists but has no status for the container yet.
 *
 * Besides these, a reason can be one Kubernetes reported, passed through unchanged:
 * - a FATAL_WAITING_REASONS value (lost): the container cannot start;
 * - the pod's status.reason (lost) when the kubelet failed the pod as a whole: Evicted,
 *   OutOfcpu, OutOfmemory, NodeAffinity, UnexpectedAdmissionError, DeadlineExceeded,
 *   Shutdown, Terminated, NodeLost…;
 * - a DisruptionTarget condition's reason (lost) for a pod being deleted:
 *   DeletionByTaintManager, EvictionByEvictionAPI, PreemptionByScheduler,
 *   TerminationByKubelet, DeletionByPodGC;
 * - a terminated container's reason other than Completed and Error (exited), e.g.
 *   StartError or ContainerCannotRun (exit code 128: the command could not be run);
 * - a waiting container's reason (absent), e.g. ContainerCreating or PodInitializing.
 */
export const STAGE_REASONS = {
  OutOfMemory: "OutOfMemory",
  PodGone: "PodGone",
  PodDeleted: "PodDeleted",
  NodeLost: "NodeLost",
  ContainerStatusUnknown: "ContainerStatusUnknown",
  Pending: "Pending",
} as const;

/**
 * Waiting reasons after which the container will not start without a change to the pod
 * (the kubelet may keep retrying, odop does not wait): ErrImagePull, ImagePullBackOff,
 * InvalidImageName, ErrImageNeverPull, CreateContainerConfigError (a missing Secret or
 * key, runAsNonRoot with a root image), CreateContainerError.
 */
export const FATAL_WAITING_REASONS: ReadonlySet<string> = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
]);

export type StageStatesOptions = {
  /** odop created this pod (so a missing pod was deleted, not never made). */
  expected?: boolean;
  /** odop is stopping this attempt (it deleted the pod): unfinished stages are stopped, not lost. */
  stopping?: boolean;
};

type Ended = { reason: string; message: string };

/** The state of each stage in `pod` (undefined: there is no such pod). */
export function stageStates(pod: V1Pod | undefined, options: StageStatesOptions = {}): Record<StageName, PodStageState> {
  const states = {} as Record<StageName, PodStageState>;
  if (pod === undefined) {
    for (const stage of STAGES) {
      states[stage] = options.stopping
        ? { state: "stopped" }
        : options.expected
          ? { state: "lost", reason: STAGE_REASONS.PodGone, message: "the stage pod is gone" }
          : { state: "absent" };
    }
    return states;
  }
  const name = pod.metadata?.name ?? "";
  const statuses = new Map<string, V1ContainerStatus>();
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) statuses.set(s.name, s);
  const inSpec = new Set([...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name));
  const ended = podEnded(pod, name);
  const deletedAt = deletionRequestedAt(pod);

  for (const stage of STAGES) {
    const container = STAGE_CONTAINERS[stage].name;
    if (pod.spec !== undefined && !inSpec.has(container)) {
      states[stage] = { state: "absent" };
      continue;
    }
    states[stage] = containerState(container, statuses.get(container), ended, deletedAt, options);
  }
  return states;
}

function containerState(
  container: string,
  status: V1ContainerStatus | undefined,
  ended: Ended | undefined,
  deletedAt: number | undefined,
  options: StageStatesOptions,
): PodStageState {
  // A stage that had not finished (or was killed) when the pod ended from outside.
  const cut = (why: Ended): PodStageState => (options.stopping && deletedAt !== undefined ? { state: "stopped" } : { state: "lost", ...why });
  const terminated = status?.state?.terminated;
  if (terminated !== undefined) {
    const finished = time(terminated.finishedAt);
    const killedByDeletion = deletedAt !== undefined && (finished === undefined || finished >= deletedAt);
    if (ended !== undefined && terminated.exitCode !== 0 && (deletedAt === undefined || killedByDeletion)) return cut(ended);
    if (terminated.reason === "OOMKilled") {
      return { state: "exited", exitCode: 137, reason: STAGE_REASONS.OutOfMemory, message: `${container} ran out of memory (OOMKilled)` };
    }
    if (terminated.reason === STAGE_REASONS.ContainerStatusUnknown) {
      return { state: "lost", reason: STAGE_REASONS.ContainerStatusUnknown, message: `${container}: ${terminated.message ?? "the container could not be located"}` };
    }
    const state: PodStageState = { state: "exited", exitCode: terminated.exitCode };
    if (terminated.reason !== undefined && terminated.reason !== "Completed" && terminated.reason !== "Error") {
      state.reason = terminated.reason;
      if (terminated.message !== undefined) state.message = `${container}: ${terminated.message}`;
    } else if (terminated.exitCode !== 0 && terminated.message !== undefined && terminated.message.trim() !== "") {
      // The last lines of its log (terminationMessagePolicy FallbackToLogsOnError): what people need first.
      state.message = `${container}: ${terminated.message.trim()}`;
    }
    return state;
  }
  if (ended !== undefined) return cut(ended);
  if (status?.state?.running !== undefined) return { state: "running", pids: [] };
  const waiting = status?.state?.waiting;
  if (waiting?.reason !== undefined && FATAL_WAITING_REASONS.has(waiting.reason)) {
    return { state: "lost", reason: waiting.reason, message: `${container} cannot start: ${waiting.reason}${waiting.message === undefined ? "" : `: ${waiting.message}`}` };
  }
  return { state: "absent", reason: waiting?.reason ?? STAGE_REASONS.Pending };
}

/** Why the pod ended as a whole from outside its containers, if it did. */
function podEnded(pod: V1Pod, name: string): Ended | undefined {
  const status = pod.status;
  const described = (reason: string, message: string | undefined): Ended => ({
    reason,
    message: `pod ${name} ${reason}${message === undefined || message === "" ? "" : `: ${message}`}`,
  });
  if (pod.metadata?.deletionTimestamp !== undefined) {
    const disruption = status?.conditions?.find((c) => c.type === "DisruptionTarget" && c.status === "True");
    return described(disruption?.reason ?? STAGE_REASONS.PodDeleted, disruption?.message ?? status?.message);
  }
  if (status?.phase === "Failed" && status.reason !== undefined && status.reason !== "") return described(status.reason, status.message);
  if (status?.phase === "Unknown") return described(status.reason ?? STAGE_REASONS.NodeLost, status.message ?? "its node stopped reporting");
  return undefined;
}

/** When the pod's deletion was asked for: deletionTimestamp less the grace period. */
function deletionRequestedAt(pod: V1Pod): number | undefined {
  const at = time(pod.metadata?.deletionTimestamp);
  if (at === undefined) return undefined;
  return at - (pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000;
}

/** Timestamps are Dates when the client deserialised them and strings in raw JSON. */
function time(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
