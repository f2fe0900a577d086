/**
 * The Kubernetes backend: one pod per execution attempt (pod-spec.ts), whose init
 * containers configure and run and whose container publishes, run in that order by the
 * kubelet on the node odop chose.
 *
 * Contracts:
 * - start(plan) of an attempt's first stage creates its pod `<execution>-<attempt>`
 *   (create-if-absent: POST, and AlreadyExists means "it is there"); a pod that exists is
 *   never applied again (pods are immutable), so start is idempotent and returns what
 *   observe would. start of a later stage never creates anything: the pod runs that stage
 *   by itself; if the pod is gone the stage is "lost" (PodGone), since re-creating the
 *   pod would run the earlier stages, and maybe this one, twice.
 * - Before creating attempt N's pod, live pods of earlier attempts of the same execution
 *   (a pod on a lost node, say) are marked stopped and their deletion is asked for, so an
 *   attempt is not left running beside its retry. That does not wait: a node that stopped
 *   reporting cannot confirm. A controller that wants certainty calls stop() on the lost
 *   attempt first; stop() waits, bounded, and throws while the pod is still there.
 * - observe(ref) reads the pod from an informer of odop's pods (label
 *   app.kubernetes.io/managed-by=odop), with a GET when the informer has not got it (not
 *   synced yet, or a pod created a moment ago), and maps it with stage-observation.ts:
 *   a stage waiting to start in an existing pod is "running", odop's marks give "paused"
 *   and "stopped". States carry pod-status.ts's `reason` and `message` when there is one.
 * - pause/resume freeze and thaw the stage's container through the node agent
 *   (agent-client.ts), then record it in the pod's annotation odop.io/paused (and the new
 *   cores in odop.io/cpuset), so a restarted controller still reads "paused". Pausing a
 *   container that has not started yet throws a transient error: the caller retries.
 * - stop(ref) stops the whole attempt (the pod is the unit): it labels the pod
 *   odop.io/stopped=true (with odop.io/stopped-at), thaws it if it was paused, deletes it
 *   with a uid precondition, and waits (bounded: stopTimeoutMs) until it is gone. While
 *   the pod is terminating every process reads "stopped" from the label; once it is gone,
 *   this process remembers. A pod that already finished is left as it is (its exit codes
 *   are the record).
 * - pinning(ref) says whether the kubelet can pin the run stage (pod-spec.ts's Pinning);
 *   it is also written into the pod as the annotation odop.io/pinning, so it survives a
 *   restart and shows in `kubectl get pod -o yaml`.
 * - onChange listeners are called for every pod event with the ref of the pod's current
 *   stage (the first one that has not exited 0).
 * - Re-adoption after a controller restart: pods are found by name (`<execution>-<attempt>`)
 *   and labels; the informer's first list delivers every existing pod (so onChange
 *   enqueues their executions) and fills the memory of which pods were seen and stopped.
 *   What a fresh process cannot know: that a pod which is gone entirely was once created
 *   (observe says "absent" for an attempt's first stage, and start creates it again) or
 *   stopped. The window is a crash between stop() returning and the status being written.
 */
import type { KubeConfig, V1Pod, V1Toleration } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { formatCpuset } from "../../api/cpuset.ts";
import type { StageName } from "../../api/opexecution.ts";
import { AlreadyExistsError } from "../../store/errors.ts";
import type { BackoffOptions, Informer } from "../../store/kubernetes-informer.ts";
import { StageNotStartedError, StageStillStoppingError } from "../errors.ts";
import type { Backend, StagePlan, StageRef, StageState } from "../types.ts";
import type { AgentClient } from "./agent-client.ts";
import { ANNOTATIONS, buildStagePod, LABELS, type Pinning, STAGE_CONTAINERS, stagePodName, type WorkspaceVolume } from "./pod-spec.ts";
import { type PodStageState, STAGE_REASONS } from "./pod-status.ts";
import type { PodTemplate } from "./pod-template.ts";
import { PodClient, podKeyOf } from "./pod-client.ts";
import { isStopped, MARKS, observeStage, refOfPod } from "./stage-observation.ts";

export type CpuManagerPolicy = "static" | "none";

export type KubernetesBackendDeps = {
  kubeConfig: KubeConfig;
  log: Logger;
  /** odop's own image, for configure, publish and done. */
  odopImage: string;
  /** The workspace volume of a pod, or a function of the execution's namespace. */
  workspace: WorkspaceVolume | ((namespace: string) => WorkspaceVolume);
  imagePullSecrets?: readonly string[];
  tolerations?: readonly V1Toleration[];
  /** The operator's pod template, read on every pod created (so a changed ConfigMap applies to new pods). */
  podTemplate?: () => PodTemplate | undefined;
  agent: AgentClient;
  /** The kubelets' CPU manager policy, or a function of the node; unknown when absent. */
  cpuManagerPolicy?: CpuManagerPolicy | ((node: string) => CpuManagerPolicy | undefined);
  /** How the odop image starts the CLI; default ["odop"]. */
  odopCommand?: readonly string[];
  /** Watch this namespace only; all namespaces when absent. */
  namespace?: string;
  /** Grace period of a stopped pod's deletion; default 10 s. */
  stopGraceSeconds?: number;
  /** How long stop() waits for the pod to be gone; default 120 s. */
  stopTimeoutMs?: number;
  /** How often stop() looks; default 500 ms. */
  stopPollMs?: number;
  /** What happens to the pod of an execution that ended: deleted when it succeeded (default), or always kept. */
  cleanupPolicy?: "delete-on-success" | "keep";
  watchBackoff?: BackoffOptions;
};

/** stop() gave up waiting: the pod is still there (its node may be unreachable). Retry later. */
export class PodStillTerminatingError extends StageStillStoppingError {
  override name = "PodStillTerminatingError";
}

type Where = { namespace: string; execution: string; pod: string; key: string };

export class KubernetesBackend implements Backend {
  readonly kind = "kubernetes" as const;
  /** The pod informer reports every change (onChange); a look every 30 s is the level-based safety net. */
  readonly observeEveryMs = 30_000;
  readonly #d: KubernetesBackendDeps;
  readonly #client: PodClient;
  readonly #listeners = new Set<(ref: StageRef) => void>();
  /**
   * Pods created or read by this process that the informer has not delivered yet, by
   * "namespace/pod"; the informer's cache (peek, no copy) holds the rest.
   */
  readonly #recent = new Map<string, V1Pod>();
  /** Pods this process has seen exist, until their execution ends (cleanup). */
  readonly #seen = new Set<string>();
  /** Attempts this process stopped or saw marked stopped, until their execution ends. */
  readonly #stopped = new Set<string>();
  readonly #pinning = new Map<string, Pinning>();
  #informer: Informer<V1Pod> | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: KubernetesBackendDeps) {
    this.#d = deps;
    this.#client = new PodClient({
      kubeConfig: deps.kubeConfig,
      log: deps.log,
      namespace: deps.namespace,
      ...(deps.watchBackoff === undefined ? {} : { watchBackoff: deps.watchBackoff }),
    });
  }

  async start(plan: StagePlan): Promise<StageState> {
    this.#watchPods();
    const at = where(plan);
    const existing = await this.#find(at);
    if (existing !== undefined || this.#stopped.has(at.key)) return this.#state(at, existing, plan.stage);

    const namespace = plan.opExecution.metadata.namespace ?? "default";
    if (namespace !== at.namespace || plan.opExecution.metadata.name !== at.execution) {
      throw new Error(`plan for ${plan.execution} carries the execution ${namespace}/${plan.opExecution.metadata.name ?? ""}`);
    }
    const policy = typeof this.#d.cpuManagerPolicy === "function" ? this.#d.cpuManagerPolicy(plan.node) : this.#d.cpuManagerPolicy;
    const template = this.#d.podTemplate?.();
    const { pod, pinning } = buildStagePod({
      task: plan.task,
      execution: plan.opExecution,
      attempt: plan.attempt,
      node: plan.node,
      cores: plan.cores,
      odopImage: this.#d.odopImage,
      workspace: typeof this.#d.workspace === "function" ? this.#d.workspace(namespace) : this.#d.workspace,
      ...(this.#d.imagePullSecrets === undefined ? {} : { imagePullSecrets: this.#d.imagePullSecrets }),
      ...(this.#d.tolerations === undefined ? {} : { tolerations: this.#d.tolerations }),
      ...(template === undefined ? {} : { template }),
      ...(this.#d.odopCommand === undefined ? {} : { odopCommand: this.#d.odopCommand }),
      ...(policy === undefined ? {} : { cpuManagerPolicy: policy }),
    });
    const first = pod.spec?.initContainers?.[0]?.name ?? pod.spec?.containers[0]?.name;
    if (first !== STAGE_CONTAINERS[plan.stage].name) {
      // A later stage of a pod that is gone: its earlier stages ran there.
      const lost: PodStageState = { state: "lost", reason: STAGE_REASONS.PodGone, message: `pod ${at.key} is gone; ${plan.stage} is not its first stage, so it is not created again` };
      return lost;
    }
    if (plan.attempt > 1) await this.#retireEarlierAttempts(at, plan);

    pod.metadata = { ...pod.metadata, annotations: { ...pod.metadata?.annotations, [MARKS.pinning]: JSON.stringify(pinning) } };
    this.#pinning.set(at.key, pinning);
    let created: V1Pod | undefined;
    try {
      created = await this.#client.create(pod);
      this.#d.log.info({ pod: at.key, node: plan.node, cpuset: formatCpuset(plan.cores), pinned: pinning.pinned, pinning: pinning.note }, "stage pod created");
    } catch (error) {
      if (!(error instanceof AlreadyExistsError)) throw error;
      created = await this.#client.get(at.namespace, at.pod);
      if (created === undefined) throw new Error(`pod ${at.key} already existed at create, and is gone now; start again`, { cause: error });
    }
    if (this.#informer?.peek(at.key) === undefined) this.#recent.set(at.key, created);
    return this.#state(at, created, plan.stage);
  }

  async observe(ref: StageRef): Promise<StageState> {
    this.#watchPods();
    const at = where(ref);
    return this.#state(at, await this.#find(at), ref.stage);
  }

  async pause(ref: StageRef): Promise<void> {
    const at = where(ref);
    const pod = await this.#find(at);
    const container = STAGE_CONTAINERS[ref.stage].name;
    const state = this.#state(at, pod, ref.stage);
    if (pod === undefined || state.state !== "running") return; // paused already, or nothing left to pause
    if (!containerRunning(pod, container)) {
      throw new StageNotStartedError(`${container} of pod ${at.key} has not started yet (${state.reason ?? "waiting"}); pause it once it runs`);
    }
    const { node, uid } = placement(pod, at);
    await this.#d.agent.freeze(node, uid, container);
    await this.#client.patchMetadata(at.namespace, at.pod, { annotations: { [MARKS.paused]: container } });
    this.#d.log.info({ pod: at.key, node, container }, "stage paused");
  }

  async resume(ref: StageRef, cores: readonly number[]): Promise<void> {
    const at = where(ref);
    const pod = await this.#find(at);
    if (pod === undefined) return;
    const container = STAGE_CONTAINERS[ref.stage].name;
    const cpuset = formatCpuset(cores);
    if (containerRunning(pod, container)) {
      const { node, uid } = placement(pod, at);
      await this.#d.agent.thaw(node, uid, container, cpuset);
      this.#d.log.info({ pod: at.key, node, container, cpuset }, "stage resumed");
    }
    await this.#client.patchMetadata(at.namespace, at.pod, { annotations: { [MARKS.paused]: null, [ANNOTATIONS.cpuset]: cpuset } });
  }

  async stop(ref: StageRef): Promise<void> {
    const at = where(ref);
    const pod = await this.#client.get(at.namespace, at.pod);
    if (pod === undefined) {
      this.#stopped.add(at.key);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return; // nothing runs; its exit codes stay readable
    const { node, uid } = placement(pod, at);
    const paused = pod.metadata?.annotations?.[MARKS.paused];
    if (paused !== undefined) {
      // A frozen process cannot act on SIGTERM: thaw it so that the grace period means something.
      await this.#d.agent.thaw(node, uid, paused).catch((error: unknown) => this.#d.log.warn({ err: error, pod: at.key, node }, "could not thaw a stage before stopping it"));
    }
    if (!isStopped(pod)) {
      const marked = await this.#client.patchMetadata(at.namespace, at.pod, {
        labels: { [MARKS.stopped]: "true" },
        annotations: { [MARKS.stoppedAt]: new Date().toISOString() },
      });
      // Only once the mark is written does the attempt read "stopped" (a refused patch leaves it as it is).
      this.#stopped.add(at.key);
      if (marked === undefined) return;
    } else this.#stopped.add(at.key);
    if (pod.metadata?.deletionTimestamp === undefined) {
      const asked = await this.#client.delete(at.namespace, at.pod, uid, this.#d.stopGraceSeconds ?? 10);
      if (!asked) return;
    }
    await this.#waitGone(at, uid, node);
    this.#d.log.info({ pod: at.key, node }, "stage pod stopped");
  }

  async cleanup(ref: StageRef, succeeded: boolean): Promise<void> {
    const at = where(ref);
    // The execution has ended: what this process remembers of its attempts goes.
    for (let attempt = 1; attempt <= ref.attempt; attempt += 1) {
      const key = `${at.namespace}/${stagePodName(at.execution, attempt)}`;
      this.#seen.delete(key);
      this.#stopped.delete(key);
      this.#pinning.delete(key);
      this.#recent.delete(key);
    }
    if (!succeeded || (this.#d.cleanupPolicy ?? "delete-on-success") === "keep") return;
    const pod = await this.#client.get(at.namespace, at.pod);
    if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined) return;
    await this.#client.delete(at.namespace, at.pod, pod.metadata?.uid, 0);
    this.#d.log.info({ pod: at.key }, "succeeded stage pod deleted");
  }

  onChange(listener: (ref: StageRef) => void): () => void {
    this.#watchPods();
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Whether the kubelet can pin the run stage of this attempt, and why (not); undefined when the pod is unknown here. */
  pinning(ref: StageRef): Pinning | undefined {
    const at = where(ref);
    const known = this.#pinning.get(at.key);
    if (known !== undefined) return known;
    const raw = this.#cached(at.key)?.metadata?.annotations?.[MARKS.pinning];
    if (raw === undefined) return undefined;
    try {
      const parsed = JSON.parse(raw) as Partial<Pinning>;
      if (typeof parsed.pinned === "boolean" && typeof parsed.note === "string") return { pinned: parsed.pinned, note: parsed.note };
    } catch {
      // an annotation someone edited: unknown
    }
    return undefined;
  }

  /** Starts the pod informer and waits until its first list is in (bounded); optional, observe works before. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const informer = this.#watchPods();
    const deadline = Date.now() + timeoutMs;
    while (!informer.synced) {
      if (Date.now() > deadline) throw new Error(`the pod informer did not sync within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The first list's events are queued as promise jobs: let them run.
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Stops the informer; the backend must not be used afterwards. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.#informer?.stop();
  }

  // ------------------------------------------------------------------- internals

  #watchPods(): Informer<V1Pod> {
    if (this.#informer !== undefined) return this.#informer;
    const informer = this.#client.informer();
    this.#informer = informer;
    this.#unsubscribe = informer.subscribe((event) => {
      const pod = event.object;
      const key = podKeyOf(pod);
      this.#recent.delete(key); // the informer has it (or knows it is gone)
      if (event.type === "DELETED") this.#pinning.delete(key);
      else this.#remember(key, pod);
      const ref = refOfPod(pod);
      if (ref === undefined) return;
      for (const listener of this.#listeners) {
        try {
          listener(ref);
        } catch (error) {
          this.#d.log.error({ err: error, pod: key }, "stage change listener threw");
        }
      }
    });
    return informer;
  }

  #remember(key: string, pod: V1Pod): void {
    this.#seen.add(key);
    if (isStopped(pod)) this.#stopped.add(key);
  }

  #cached(key: string): V1Pod | undefined {
    return this.#informer?.peek(key) ?? this.#recent.get(key);
  }

  /**
   * The pod from the informer, or from a GET when the informer does not have it yet (not
   * synced; created by another replica a moment ago). Once the informer has listed, a pod
   * it has not got and this process did not create is taken as absent without asking:
   * creating it is a POST that AlreadyExists would answer, so nothing is made twice.
   */
  async #find(at: Where): Promise<V1Pod | undefined> {
    const cached = this.#cached(at.key);
    if (cached !== undefined) return cached;
    if (this.#informer?.synced === true && !this.#seen.has(at.key)) return undefined;
    const pod = await this.#client.get(at.namespace, at.pod);
    if (pod !== undefined && this.#informer?.peek(at.key) === undefined) this.#recent.set(at.key, pod);
    return pod;
  }

  #state(at: Where, pod: V1Pod | undefined, stage: StageName): PodStageState {
    if (pod !== undefined) this.#remember(at.key, pod);
    const state = observeStage(pod, stage, { seen: this.#seen.has(at.key), stopped: this.#stopped.has(at.key) });
    return pod === undefined ? state : { ...state, pod: at.pod };
  }

  async #waitGone(at: Where, uid: string, node: string): Promise<void> {
    const timeoutMs = this.#d.stopTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pod = await this.#client.get(at.namespace, at.pod);
      if (pod === undefined || pod.metadata?.uid !== uid) return;
      if (Date.now() >= deadline) {
        throw new PodStillTerminatingError(`pod ${at.key} on node ${node} is still there ${Math.round(timeoutMs / 1000)} s after its deletion was asked for (is the node reachable?)`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.#d.stopPollMs ?? 500));
    }
  }

  /** Asks for the deletion of live pods of earlier attempts of this execution (see the module comment). */
  async #retireEarlierAttempts(at: Where, plan: StagePlan): Promise<void> {
    const { items } = await this.#client.list(at.namespace, `${LABELS.execution}=${at.execution}`);
    for (const pod of items) {
      const labels = pod.metadata?.labels ?? {};
      const attempt = Number(labels[LABELS.attempt]);
      const phase = pod.status?.phase;
      if (!(attempt < plan.attempt) || labels[LABELS.executionId] !== plan.opExecution.spec.executionId) continue;
      if (phase === "Succeeded" || phase === "Failed" || pod.metadata?.deletionTimestamp !== undefined) continue;
      const key = podKeyOf(pod);
      const name = pod.metadata?.name ?? "";
      this.#d.log.warn({ pod: key, node: pod.spec?.nodeName, phase, attempt: plan.attempt }, "deleting a live pod of an earlier attempt");
      await this.#client.patchMetadata(at.namespace, name, { labels: { [MARKS.stopped]: "true" }, annotations: { [MARKS.stoppedAt]: new Date().toISOString() } });
      this.#stopped.add(key);
      await this.#client.delete(at.namespace, name, pod.metadata?.uid, this.#d.stopGraceSeconds ?? 10);
    }
  }
}

function where(ref: StageRef): Where {
  const slash = ref.execution.indexOf("/");
  if (slash <= 0) throw new Error(`execution "${ref.execution}" is not "namespace/name"`);
  const namespace = ref.execution.slice(0, slash);
  const execution = ref.execution.slice(slash + 1);
  const pod = stagePodName(execution, ref.attempt);
  return { namespace, execution, pod, key: `${namespace}/${pod}` };
}

function placement(pod: V1Pod, at: Where): { node: string; uid: string } {
  const node = pod.spec?.nodeName;
  const uid = pod.metadata?.uid;
  if (node === undefined || node === "" || uid === undefined) throw new Error(`pod ${at.key} has no node or uid`);
  return { node, uid };
}

function containerRunning(pod: V1Pod, container: string): boolean {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return statuses.some((s) => s.name === container && s.state?.running !== undefined);
}
