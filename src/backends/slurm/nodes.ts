/**
 * Slurm nodes as the scheduler and `kubectl get opnodes` see them before node agents
 * report (issue: node agents): what slurmctld has allocated, from slurmrestd. A coarse
 * view — an allocated core that is idle is not harvested, and Slurm's cpu_load is a
 * 5-minute average, so it is shown, never used — that lets odop place executions next
 * to the main application's job on a cluster without agents.
 *
 * Core ids are nominal: Slurm does not say which cores a job holds without whole-node
 * allocations, and it picks the cores of odop's jobs itself. Cores allocated to jobs
 * other than odop's are numbered first; odop's own jobs do not count (their cores are
 * odop's to manage, and the scheduler already holds them for the running executions).
 *
 * Labels let the scheduler place an execution next to a job (`target.slurmJob`): a node
 * running job 123 has `slurm.odop.io/job-123: "true"`, and one running the newest
 * running job named "sim" has `slurm.odop.io/job-name-sim: "true"`.
 */
import type { Logger } from "pino";
import { formatCpuset } from "../../api/cpuset.ts";
import type { OpNodeStatus } from "../../api/opnode.ts";
import type { OpTask } from "../../api/optask.ts";
import type { NodeView } from "../../scheduler/types.ts";
import type { SlurmApi, SlurmJob, SlurmNode } from "./rest/types.ts";

/** Comments of odop's jobs start so (backend.ts commentOf). */
export const ODOP_JOB_COMMENT = "odop.io/execution-id=";

/** The scheduler's node selector that places a task next to its target Slurm job; undefined without one. */
export function slurmJobSelector(task: OpTask): Record<string, string> | undefined {
  const target = task.spec.target?.slurmJob;
  if (target === undefined) return undefined;
  return target.id !== undefined ? { [`slurm.odop.io/job-${target.id}`]: "true" } : { [`slurm.odop.io/job-name-${target.name ?? ""}`]: "true" };
}

/** Expands a Slurm hostlist ("n[01-03,7],login") into names. */
export function expandHostlist(list: string): string[] {
  return splitTop(list)
    .filter((part) => part !== "")
    .flatMap((part) => expandName(part, list));
}

/** One name with bracketed ranges ("rack[1-2]n[01-02]"), expanded left to right. */
function expandName(name: string, list: string): string[] {
  const open = name.indexOf("[");
  if (open === -1) return [name];
  const close = name.indexOf("]", open);
  if (close === -1) throw new Error(`bad hostlist "${list}": "[" without "]"`);
  const prefix = name.slice(0, open);
  const tails = expandName(name.slice(close + 1), list);
  const names: string[] = [];
  for (const range of name.slice(open + 1, close).split(",")) {
    const [from = "", to = from] = range.split("-");
    const start = Number(from);
    const end = Number(to);
    if (from === "" || !Number.isInteger(start) || !Number.isInteger(end) || end < start || end - start > 100_000) throw new Error(`bad hostlist range "${range}" in "${list}"`);
    for (let i = start; i <= end; i++) for (const tail of tails) names.push(`${prefix}${String(i).padStart(from.length, "0")}${tail}`);
  }
  return names;
}

/** Splits on commas outside brackets. */
function splitTop(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of list) {
    if (ch === "[") depth++;
    if (ch === "]") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

const UNUSABLE = new Set(["DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING", "FUTURE", "NOT_RESPONDING", "POWERED_DOWN", "POWER_DOWN", "MAINTENANCE", "RESERVED", "UNKNOWN"]);

export type SlurmNodeViewOptions = {
  /** Only nodes of this partition; every node when absent. */
  partition?: string;
  /** Memory kept free on every node, MiB. Default 1024. */
  memoryMarginMiB?: number;
};

type NodeUse = { odopCpus: number; labels: Record<string, string> };

/** Pure: slurmctld's nodes and jobs → the scheduler's views. */
export function slurmNodeViews(nodes: readonly SlurmNode[], jobs: readonly SlurmJob[], options: SlurmNodeViewOptions = {}): NodeView[] {
  const use = nodeUse(jobs);
  return nodes
    .filter((n) => options.partition === undefined || n.partitions.includes(options.partition))
    .map((n) => {
      const u = use.get(n.name) ?? { odopCpus: 0, labels: {} };
      const others = Math.max(0, Math.min(n.cpus, n.allocatedCpus - u.odopCpus));
      const cores = Array.from({ length: n.cpus }, (_, id) => ({ id, mainUsage: id < others ? 1 : 0, harvestable: id >= others }));
      const freeMiB = n.realMemoryMiB - n.allocatedMemoryMiB - (options.memoryMarginMiB ?? 1024);
      return {
        name: n.name,
        cores,
        memoryAvailableBytes: Math.max(0, freeMiB) * 2 ** 20,
        labels: { ...u.labels, ...Object.fromEntries(n.partitions.map((p) => [`slurm.odop.io/partition-${p}`, "true"])) },
        stale: n.state.some((s) => UNUSABLE.has(s)),
      };
    });
}

/** Per node: CPUs odop's running jobs hold, and labels naming the other jobs running there. */
function nodeUse(jobs: readonly SlurmJob[]): Map<string, NodeUse> {
  const use = new Map<string, NodeUse>();
  const at = (node: string): NodeUse => {
    let u = use.get(node);
    if (u === undefined) use.set(node, (u = { odopCpus: 0, labels: {} }));
    return u;
  };
  const newestByName = new Map<string, SlurmJob>();
  for (const job of jobs) {
    if (job.state !== "RUNNING" && job.state !== "SUSPENDED") continue;
    const nodes = expandHostlist(job.nodes);
    if (job.comment.startsWith(ODOP_JOB_COMMENT)) {
      // One node per odop job (it asks for one).
      if (nodes.length === 1 && nodes[0] !== undefined) at(nodes[0]).odopCpus += job.cpus ?? 0;
      continue;
    }
    for (const node of nodes) at(node).labels[`slurm.odop.io/job-${job.jobId}`] = "true";
    const seen = newestByName.get(job.name);
    if (seen === undefined || (job.startTime ?? 0) > (seen.startTime ?? 0) || ((job.startTime ?? 0) === (seen.startTime ?? 0) && job.jobId > seen.jobId)) newestByName.set(job.name, job);
  }
  for (const [name, job] of newestByName) for (const node of expandHostlist(job.nodes)) at(node).labels[`slurm.odop.io/job-name-${name}`] = "true";
  return use;
}

/** An OpNode's status for a Slurm node (source: slurm). */
export function opNodeStatusOf(node: SlurmNode, view: NodeView | undefined, now: string): OpNodeStatus {
  const harvestable = view?.cores.filter((c) => c.harvestable).map((c) => c.id) ?? [];
  return {
    source: "slurm",
    capacity: { cores: node.cpus, memory: `${node.realMemoryMiB}Mi`, gpus: 0 },
    harvestable: { cores: harvestable.length, cpuset: formatCpuset(harvestable), memory: `${Math.floor((view?.memoryAvailableBytes ?? 0) / 2 ** 20)}Mi`, gpus: 0 },
    lastHeartbeatTime: now,
    slurm: { state: node.state.slice(0, 16), partitions: node.partitions.slice(0, 64), allocatedCores: node.allocatedCpus },
  };
}

export type SlurmNodeSourceOptions = SlurmNodeViewOptions & { log: Logger };

/** The scheduler's NodeSource for a Slurm cluster: one GET of nodes and one of jobs per refresh. */
export class SlurmNodeSource {
  readonly #api: SlurmApi;
  readonly #options: SlurmNodeSourceOptions;
  #nodes: SlurmNode[] = [];
  #views: NodeView[] = [];

  constructor(api: SlurmApi, options: SlurmNodeSourceOptions) {
    this.#api = api;
    this.#options = options;
  }

  async refresh(): Promise<void> {
    const [nodes, jobs] = await Promise.all([this.#api.nodes(), this.#api.jobs()]);
    this.#nodes = nodes;
    this.#views = slurmNodeViews(nodes, jobs, this.#options);
  }

  views(): NodeView[] {
    return this.#views;
  }

  latest(): undefined {
    return undefined;
  }

  /** OpNode statuses of the nodes seen at the last refresh. */
  opNodes(now: string): { name: string; status: OpNodeStatus }[] {
    const views = new Map(this.#views.map((v) => [v.name, v]));
    return this.#nodes
      .filter((n) => views.has(n.name))
      .map((n) => ({ name: n.name, status: opNodeStatusOf(n, views.get(n.name), now) }));
  }
}
