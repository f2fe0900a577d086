/**
 * The nodes as the node agents report them: the controller's NodeSource when agents
 * push samples (src/api/agent-push.ts). Samples arrive by push (`take`, called by the
 * ingest server for every valid push); the scheduler reads one NodeWindow per node
 * (`views`), and the engine publishes OpNodes (`opNodes`).
 *
 * Contracts:
 * - Time. Samples and folder reports carry the agent's clock; they are put on the
 *   controller's by the offset receivedAt − push.sentAt (skew plus the network delay of
 *   that push). The offset is held per agent instance and moved only when pushes measure
 *   one more than `skewToleranceMs` away: jitter of the network delay must not move
 *   samples back and forth (a sample moved before the newest one taken is dropped) nor
 *   change a file's mtime between two reports (mtimes are part of a fileIn trigger's
 *   identity). A smaller offset is followed at once (the agent's clock stepped forward,
 *   or the first push was slow); a larger one only when RAISE_AFTER pushes in a row
 *   measure it (the agent's clock stepped back), since a single slow push measures one too.
 * - Once only, in order. Per node the controller remembers the agent instance and the
 *   next seq it expects: samples of a push with seq below it are replays of a push whose
 *   reply was lost, and are skipped; a new instance (agent restart) starts again. The
 *   window takes only samples newer than the newest one taken, so order holds even when
 *   seq does not (a controller restart forgets seq: replays are then taken once, by time).
 * - Staleness. A node whose last push, or whose newest sample, is older than
 *   `staleAfterMs` at `now` is stale: no harvestable core, nothing new goes there; what
 *   runs there is left to its backend. So is a node the fallback source calls stale
 *   (a drained Slurm node, say). A node silent for `forgetAfterMs` is forgotten.
 * - Fallback. Nodes no agent reports come from `fallback` (the requests-based Kubernetes
 *   view, the Slurm allocation view) when one is given; a node with an agent uses the
 *   agent's view, with the fallback's labels (node selectors match on them).
 */
import type { AgentPush, AgentPushReply, FolderReport, WatchRequest } from "../../api/agent-push.ts";
import { formatCpuset } from "../../api/cpuset.ts";
import { OPNODE_CONDITIONS, type OpNodeStatus } from "../../api/opnode.ts";
import type { NodeSample } from "../../api/sample.ts";
import type { NodeView } from "../../scheduler/types.ts";
import { NodeWindow, type WindowConfig } from "../../scheduler/window.ts";
import { rfc3339 } from "../conditions.ts";
import type { NodeSource } from "../node-source.ts";

/** Reasons of the OpNode Fresh condition written here (opnode.ts lists them all). */
export const FRESH_REASONS = {
  /** The agent pushed within staleAfterMs. */
  Fresh: "Fresh",
  /** The agent's last push is older than staleAfterMs. */
  AgentSilent: "AgentSilent",
} as const;

/** A folder report as the controller keeps it: mtimes on the controller's clock. */
export type ReceivedFolderReport = { node: string; receivedAt: number; report: FolderReport };

/** What AgentFileProbe reads: every node's newest folder reports, and a counter that moves when they change. */
export interface FolderReportSource {
  folderReports(): Iterable<ReceivedFolderReport>;
  readonly foldersVersion: number;
}

export type AgentNodeSourceOptions = {
  /** The folders a node's agent should watch (tasks that target it); called on every push, so keep it cheap. */
  watchFor: (node: string) => readonly WatchRequest[];
  /** Nodes no agent reports (and the labels of those that do). */
  fallback?: NodeSource;
  /** A node whose last push or newest sample is older than this is stale. Default 10 s. */
  staleAfterMs?: number;
  /** A node silent this long is forgotten at the next refresh(). Default 24 h. */
  forgetAfterMs?: number;
  /** Clock offsets within this of the held one are network jitter, not a clock step. Default 1 s. */
  skewToleranceMs?: number;
  /**
   * The windows' settings (staleAfterMs above overrides theirs). ringSize defaults to
   * AGENT_RING_SIZE here: the scheduler reads only the windows' per-core state, and 120
   * kept samples of 128 cores would be ~1 GB for 5,000 nodes.
   */
  window?: Partial<WindowConfig>;
  /** The controller's clock, for refresh(). Default Date.now. */
  now?: () => number;
};

/** What opNodes() needs of the newest sample, kept small (the sample itself is not kept). */
type Summary = {
  cores: number;
  memoryTotalBytes: number;
  mainCpu: number;
  mainBytes: number;
  mainProcesses: number;
  gpus: number;
  idleGpus: number;
};

type AgentNode = {
  window: NodeWindow;
  instance: string;
  nextSeq: number;
  offsetMs: number;
  /** Pushes in a row that measured an offset above offsetMs + tolerance. */
  raised: number;
  /** Controller clock: the last push, and the first push after a silence (Fresh's transition time). */
  lastPushAt: number;
  freshSince: number;
  agentVersion: string;
  sampleIntervalMs: number;
  summary: Summary | undefined;
  /** The newest folder reports, and the agent's sentAt of the push they came in (replays must not roll them back). */
  folders: ReceivedFolderReport[];
  foldersSentAt: number;
  /** The window's view made stale (silent agent, or the fallback calls the node stale). */
  staleView?: { of: NodeView; copy: NodeView };
};

/** Samples kept per node (NodeWindow.samples(), for displays): ten seconds at one a second, ~20 KB of 128 cores. */
export const AGENT_RING_SIZE = 10;
const DEFAULT_STALE_AFTER_MS = 10_000;
const DEFAULT_FORGET_AFTER_MS = 24 * 3600_000;
const DEFAULT_SKEW_TOLERANCE_MS = 1000;
const MAX_WATCH = 256;
const MiB = 2 ** 20;
/** Main memory in OpNode status moves in these steps: a write per byte of noise would defeat OpNodeWriter's change detection. */
const MAIN_MEMORY_STEP = 256 * MiB;

export class AgentNodeSource implements NodeSource, FolderReportSource {
  readonly #o: AgentNodeSourceOptions;
  readonly #staleAfterMs: number;
  readonly #nodes = new Map<string, AgentNode>();
  #foldersVersion = 0;

  constructor(options: AgentNodeSourceOptions) {
    this.#o = options;
    this.#staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  }

  /**
   * Takes a valid push (the ingest server has checked it against AgentPush, and that
   * every sample is of push.node) received at `receivedAt` by the controller's clock.
   * Throws on a sample of another node: a caller's bug.
   */
  take(push: AgentPush, receivedAt: number): AgentPushReply {
    for (const s of push.samples) {
      if (s.node !== push.node) throw new Error(`push of node ${JSON.stringify(push.node)} carries a sample of ${JSON.stringify(s.node)}`);
    }
    const measured = Math.round(receivedAt - push.sentAt);
    let n = this.#nodes.get(push.node);
    if (n === undefined) {
      n = {
        window: new NodeWindow({ name: push.node, config: { ringSize: AGENT_RING_SIZE, ...this.#o.window, staleAfterMs: this.#staleAfterMs } }),
        instance: push.agent.instance,
        nextSeq: 0,
        offsetMs: measured,
        raised: 0,
        lastPushAt: receivedAt,
        freshSince: receivedAt,
        agentVersion: push.agent.version,
        sampleIntervalMs: push.agent.sampleIntervalMs,
        summary: undefined,
        folders: [],
        foldersSentAt: -Infinity,
      };
      this.#nodes.set(push.node, n);
    } else if (n.instance !== push.agent.instance) {
      n.instance = push.agent.instance;
      n.nextSeq = 0;
      n.offsetMs = measured;
      n.raised = 0;
      n.foldersSentAt = -Infinity;
    } else {
      follow(n, measured, this.#o.skewToleranceMs ?? DEFAULT_SKEW_TOLERANCE_MS);
    }
    if (receivedAt - n.lastPushAt > this.#staleAfterMs) n.freshSince = receivedAt;
    n.lastPushAt = Math.max(n.lastPushAt, receivedAt);
    n.agentVersion = push.agent.version;
    n.sampleIntervalMs = push.agent.sampleIntervalMs;

    let accepted = 0;
    let newest: NodeSample | undefined;
    const samples = push.samples;
    for (let i = Math.max(0, n.nextSeq - push.seq); i < samples.length; i++) {
      const sample = samples[i];
      if (sample === undefined) continue;
      if (n.window.add({ ...sample, time: sample.time + n.offsetMs })) {
        accepted++;
        newest = sample;
      }
    }
    if (newest !== undefined) n.summary = summarize(newest, n.window.config.idleThreshold);
    n.nextSeq = Math.max(n.nextSeq, push.seq + samples.length);

    if (push.folders !== undefined && push.sentAt >= n.foldersSentAt) {
      const offset = n.offsetMs;
      n.folders = push.folders.map((report) => ({
        node: push.node,
        receivedAt,
        report: { ...report, files: report.files.map((f) => ({ ...f, mtimeMs: Math.max(0, f.mtimeMs + offset) })) },
      }));
      n.foldersSentAt = push.sentAt;
      this.#foldersVersion++;
    }

    const watch = this.#o.watchFor(push.node);
    return { accepted, nextSeq: n.nextSeq, watch: watch.length > MAX_WATCH ? watch.slice(0, MAX_WATCH) : [...watch], serverTime: Math.round(receivedAt) };
  }

  /** Samples arrive by push: nothing to fetch. Refreshes the fallback, and forgets nodes silent for forgetAfterMs. */
  async refresh(): Promise<void> {
    const now = (this.#o.now ?? Date.now)();
    const forgetAfter = this.#o.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS;
    for (const [name, n] of this.#nodes) {
      if (now - n.lastPushAt > forgetAfter) {
        this.#nodes.delete(name);
        if (n.folders.length > 0) this.#foldersVersion++;
      }
    }
    await this.#o.fallback?.refresh();
  }

  views(now: number): NodeView[] {
    const fallback = this.#fallbackViews(now);
    const out: NodeView[] = [];
    for (const [name, n] of this.#nodes) {
      const other = fallback.get(name);
      if (other !== undefined && !sameLabels(n.window.labels, other.labels)) n.window.setLabels(other.labels);
      const view = n.window.view(now);
      const silent = now - n.lastPushAt > this.#staleAfterMs;
      if (view.stale || (!silent && other?.stale !== true)) {
        out.push(view);
        continue;
      }
      // Kept while the window's view is the same object, as the window keeps its own.
      if (n.staleView?.of !== view) n.staleView = { of: view, copy: staleCopy(view) };
      out.push(n.staleView.copy);
    }
    for (const [name, view] of fallback) if (!this.#nodes.has(name)) out.push(view);
    return out;
  }

  /** The fallback's (the embedded mode's own machine); the controller itself runs on no sampled node. */
  latest(): NodeSample | undefined {
    return this.#o.fallback?.latest();
  }

  /**
   * OpNode statuses: agent nodes (source "agent"), and the fallback's for the others.
   * Figures are rounded so that noise does not look like a change to OpNodeWriter:
   * memory in MiB (the main application's in 256 MiB steps), main CPU in whole cores.
   */
  opNodes(now: string): { name: string; status: OpNodeStatus }[] {
    const nowMs = Date.parse(now);
    const views = new Map(this.views(nowMs).map((v) => [v.name, v]));
    const fallback = this.#o.fallback?.opNodes?.(now) ?? [];
    const fallbackByName = new Map(fallback.map((f) => [f.name, f.status]));
    const out: { name: string; status: OpNodeStatus }[] = [];
    for (const [name, n] of this.#nodes) {
      const view = views.get(name);
      if (view === undefined || n.summary === undefined) continue;
      out.push({ name, status: this.#status(n, view, nowMs, fallbackByName.get(name)) });
    }
    for (const f of fallback) if (!this.#nodes.has(f.name)) out.push(f);
    return out;
  }

  folderReports(): Iterable<ReceivedFolderReport> {
    const nodes = this.#nodes;
    return (function* () {
      for (const n of nodes.values()) yield* n.folders;
    })();
  }

  get foldersVersion(): number {
    return this.#foldersVersion;
  }

  /** Nodes an agent has reported (and not forgotten). */
  get size(): number {
    return this.#nodes.size;
  }

  /** One node's window (tests, displays); undefined for a node no agent reported. */
  window(node: string): NodeWindow | undefined {
    return this.#nodes.get(node)?.window;
  }

  #fallbackViews(now: number): Map<string, NodeView> {
    const fallback = this.#o.fallback;
    return fallback === undefined ? new Map<string, NodeView>() : new Map(fallback.views(now).map((v) => [v.name, v]));
  }

  #status(n: AgentNode, view: NodeView, now: number, other: OpNodeStatus | undefined): OpNodeStatus {
    const s = n.summary ?? summaryOfNothing();
    const harvestable = view.cores.filter((c) => c.harvestable).map((c) => c.id);
    // Fresh is about the agent alone (a node the fallback calls drained is not silent):
    // stale when its last push or its newest sample is older than staleAfterMs.
    const latest = n.window.latestTime ?? -Infinity;
    const heard = Math.min(n.lastPushAt, latest);
    const fresh = now - heard <= this.#staleAfterMs;
    // Transition times follow from the push times, so that an unchanged condition reads the same on every call.
    const condition = fresh
      ? { type: OPNODE_CONDITIONS.Fresh, status: "True" as const, reason: FRESH_REASONS.Fresh, message: `agent ${n.agentVersion} reports every ${seconds(n.sampleIntervalMs)} s`, lastTransitionTime: rfc3339(n.freshSince) }
      : {
          type: OPNODE_CONDITIONS.Fresh,
          status: "False" as const,
          reason: FRESH_REASONS.AgentSilent,
          message: now - n.lastPushAt > this.#staleAfterMs ? `agent silent since ${rfc3339(n.lastPushAt)}` : `no new sample since ${rfc3339(latest)}`,
          lastTransitionTime: rfc3339(Math.min(now, heard + this.#staleAfterMs)),
        };
    return {
      source: "agent",
      capacity: { cores: s.cores, memory: `${Math.floor(s.memoryTotalBytes / MiB)}Mi`, gpus: s.gpus },
      mainApplication: {
        cores: Math.round(s.mainCpu),
        memory: `${Math.round(s.mainBytes / MAIN_MEMORY_STEP) * (MAIN_MEMORY_STEP / MiB)}Mi`,
        processes: s.mainProcesses,
      },
      harvestable: {
        cores: harvestable.length,
        cpuset: formatCpuset(harvestable),
        memory: `${Math.floor(view.memoryAvailableBytes / MiB)}Mi`,
        gpus: view.stale ? 0 : s.idleGpus,
      },
      lastHeartbeatTime: rfc3339(n.lastPushAt),
      agent: { version: n.agentVersion, sampleIntervalSeconds: n.sampleIntervalMs / 1000 },
      ...(other?.slurm === undefined ? {} : { slurm: other.slurm }),
      conditions: [condition],
    };
  }
}

/** Pushes in a row that must measure a larger clock offset before it is taken. */
export const RAISE_AFTER = 3;

/** Moves the node's clock offset after a push measured `measured` (see the module comment). */
function follow(n: AgentNode, measured: number, tolerance: number): void {
  if (measured < n.offsetMs - tolerance) {
    n.offsetMs = measured;
    n.raised = 0;
  } else if (measured > n.offsetMs + tolerance) {
    if (++n.raised >= RAISE_AFTER) {
      n.offsetMs = measured;
      n.raised = 0;
    }
  } else n.raised = 0;
}

/**
 * A GPU counts as harvestable when the newest sample shows it idle: utilization below
 * the window's idle threshold and under 5 % of its memory used. One reading, not a
 * window: GPUs are shown, the scheduler does not place on them yet.
 */
function summarize(sample: NodeSample, idleThreshold: number): Summary {
  const gpus = sample.gpus ?? [];
  return {
    cores: sample.cores.length,
    memoryTotalBytes: sample.memory.totalBytes,
    mainCpu: sample.main.cpu,
    mainBytes: sample.memory.mainBytes,
    mainProcesses: sample.main.processes,
    gpus: gpus.length,
    idleGpus: gpus.filter((g) => g.utilization < idleThreshold && g.memoryUsedBytes <= 0.05 * g.memoryTotalBytes).length,
  };
}

function summaryOfNothing(): Summary {
  return { cores: 0, memoryTotalBytes: 0, mainCpu: 0, mainBytes: 0, mainProcesses: 0, gpus: 0, idleGpus: 0 };
}

function seconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}

function staleCopy(view: NodeView): NodeView {
  return { ...view, cores: view.cores.map((c) => ({ ...c, harvestable: false })), stale: true };
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => a[k] === b[k]);
}
