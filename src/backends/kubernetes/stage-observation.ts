/**
 * What the backend reports for one stage of an attempt's pod (pure: no API calls). It
 * builds on pod-status.ts's `stageStates` and adds what only the backend knows or needs:
 *
 * - A pod that exists but whose stage container has not started (ContainerCreating,
 *   PodInitializing, an earlier init container still running, no status yet) reads as
 *   "running" with the waiting reason: the pod will run that stage by itself, and
 *   "absent" would make the reconciler call start() on every pass. ("absent" is kept for
 *   "no pod".)
 * - A pod that ended (Succeeded or Failed) before the stage's container ran reads as
 *   "lost" (`PodEnded`): it never will. A pod without a container for the stage reads as
 *   "lost" (`NoSuchStage`): the task changed under the execution.
 * - odop's stop marks (the label odop.io/stopped, or this process's memory of a stop)
 *   turn every unfinished stage into "stopped"; a stage that had exited stays exited.
 * - odop's pause mark (the annotation odop.io/paused naming the container) turns a
 *   running stage into "paused".
 *
 * `pids` are empty: the processes live in the pod's cgroups on the node, not here.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { STAGES, type StageName } from "../../api/opexecution.ts";
import type { StageRef } from "../types.ts";
import { LABELS, STAGE_CONTAINERS } from "./pod-spec.ts";
import { type PodStageState, stageStates } from "./pod-status.ts";

/** Marks the backend writes onto a stage pod after creating it (labels and annotations are mutable). */
export const MARKS = {
  /** Label, "true": odop stopped this attempt (set before the pod is deleted). */
  stopped: "odop.io/stopped",
  /** Annotation: when odop stopped it (RFC 3339). */
  stoppedAt: "odop.io/stopped-at",
  /** Annotation: the container odop froze through the node agent. */
  paused: "odop.io/paused",
  /** Annotation, JSON {pinned, note}: whether the kubelet can pin the run stage (pod-spec.ts's Pinning). */
  pinning: "odop.io/pinning",
} as const;

/**
 * Reasons this module adds to pod-status.ts's STAGE_REASONS:
 * - `PodEnded` (lost): the pod ended before this stage's container ran.
 * - `NoSuchStage` (lost): the pod has no container for this stage.
 * - `StoppedByOdop` (stopped): odop stopped the attempt.
 */
export const OBSERVATION_REASONS = {
  PodEnded: "PodEnded",
  NoSuchStage: "NoSuchStage",
  StoppedByOdop: "StoppedByOdop",
} as const;

export type StageMemory = {
  /** This process saw the pod (so a missing pod was deleted, not never made). */
  seen: boolean;
  /** This process stopped the attempt. */
  stopped: boolean;
};

/** The state of `stage` in `pod` (undefined: no pod by that name). */
export function observeStage(pod: V1Pod | undefined, stage: StageName, memory: StageMemory): PodStageState {
  const stopped = memory.stopped || isStopped(pod);
  const state = stageStates(pod, { expected: memory.seen, stopping: stopped })[stage];
  if (pod === undefined) return state;
  const name = pod.metadata?.name ?? "";
  const container = STAGE_CONTAINERS[stage].name;
  if (stopped && state.state !== "exited" && state.state !== "stopped") {
    return { state: "stopped", reason: OBSERVATION_REASONS.StoppedByOdop, message: `odop stopped pod ${name}` };
  }
  if (state.state === "absent") {
    const inSpec = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].some((c) => c.name === container);
    if (!inSpec) return { state: "lost", reason: OBSERVATION_REASONS.NoSuchStage, message: `pod ${name} has no ${container} container` };
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      return { state: "lost", reason: OBSERVATION_REASONS.PodEnded, message: `pod ${name} ended (${phase}) before ${container} ran` };
    }
    const waiting: PodStageState = { state: "running", pids: [] };
    if (state.reason !== undefined) waiting.reason = state.reason;
    return waiting;
  }
  if (state.state === "running" && pod.metadata?.annotations?.[MARKS.paused] === container) return { state: "paused", pids: [] };
  return state;
}

export function isStopped(pod: V1Pod | undefined): boolean {
  return pod?.metadata?.labels?.[MARKS.stopped] === "true";
}

/** The stage the pod is at: the first of its stages that has not exited 0 (the last one when all have). */
export function currentStage(pod: V1Pod): StageName {
  const states = stageStates(pod);
  const present = new Set([...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name));
  const stages = STAGES.filter((s) => present.has(STAGE_CONTAINERS[s].name));
  for (const stage of stages) {
    const s = states[stage];
    if (!(s.state === "exited" && s.exitCode === 0)) return stage;
  }
  return stages.at(-1) ?? "run";
}

/** The StageRef of the pod's current stage; undefined for a pod without odop's labels. */
export function refOfPod(pod: V1Pod): StageRef | undefined {
  const namespace = pod.metadata?.namespace;
  const execution = pod.metadata?.labels?.[LABELS.execution];
  const attempt = Number(pod.metadata?.labels?.[LABELS.attempt]);
  if (namespace === undefined || execution === undefined || !Number.isInteger(attempt) || attempt < 1) return undefined;
  return { execution: `${namespace}/${execution}`, stage: currentStage(pod), attempt };
}
