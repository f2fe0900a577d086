/**
 * The Slurm backend: one Slurm job per execution attempt, submitted through
 * slurmrestd, whose batch script (script.ts) runs configure, run and publish as job
 * steps, in order, on the node the scheduler chose, with as many cores as it chose.
 *
 * Contracts:
 * - Each attempt has a state folder `<stateDir(execution)>/slurm-<attempt>/` on a
 *   filesystem the controller and the Slurm nodes share (as HPC home and project
 *   filesystems are; the workspace has to be shared anyway). The batch script writes
 *   each stage's start and exit code there; the backend writes `job.json` (the job id),
 *   `submitting` (before a submission), `paused` and `stopped`.
 * - start(plan) of an attempt's first stage submits the job once: `submitting` is
 *   written first, `job.json` after slurmrestd answered. A submission whose answer was
 *   lost (timeout, controller crash) leaves `submitting` without `job.json`; the next
 *   observe or start looks the job up by its comment (the execution's uid and the
 *   attempt) in slurmctld's job list and adopts it instead of submitting again. The
 *   window left: slurmctld taking a submission after the list was read (slurmrestd
 *   still working on a request that timed out here). start of a later stage submits
 *   nothing: the job runs it by itself.
 * - observe(ref): a stage's recorded exit code wins; otherwise the job's state says
 *   (observation.ts), read from one shared list of slurmctld's jobs refreshed at most
 *   every `pollMs` (so many running executions cost one GET per interval, not one each),
 *   or GET …/job/{id} for a job not in it yet.
 * - pause/resume stop and continue the running step's tasks, then mark `paused`: with
 *   SIGSTOP/SIGCONT where slurmrestd signals only the steps (data_parser versions), and
 *   through the batch script where it signals the whole job (v0.0.38: PAUSE_SIGNAL, which
 *   the script's trap turns into `scancel --signal=STOP <job>.<step>`; SIGCONT, which srun
 *   forwards and the trap passes on). The cores cannot move: Slurm allocated them.
 *   Pausing a stage that has not started throws a transient error (the caller retries).
 * - stop cancels the job (after SIGCONT, so that the steps see the termination) and
 *   waits, bounded, until Slurm reports it ended; `stopped` is written first, so a
 *   restarted controller reads "stopped".
 * - Cores: Slurm's select plugin picks the cores inside the node (`--cpu-bind=cores`
 *   binds each step to them); odop asks for the node and the number of cores it
 *   chose. Without whole-node allocations Slurm cannot be told which core ids.
 * - Errors: slurmrestd outages are SlurmUnreachableError (transient: the controller
 *   retries and sets BackendReachable=False/SlurmUnreachable); Slurm refusing a job is
 *   SlurmApiError (terminal: the attempt fails with Slurm's message).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { parseDuration } from "../../api/duration.ts";
import { STAGES, type StageName } from "../../api/opexecution.ts";
import { parseQuantity, toUnits } from "../../api/quantity.ts";
import { StageNotStartedError, StageStillStoppingError } from "../errors.ts";
import type { Backend, StagePlan, StageRef, StageState } from "../types.ts";
import { type AttemptRecord, observeStage } from "./observation.ts";
import type { JobSubmission, SlurmApi, SlurmJob } from "./rest/types.ts";
import { hasEnded } from "./rest/wire.ts";
import { batchScript, PAUSE_SIGNAL, stageFiles } from "./script.ts";

export type SlurmBackendDeps = {
  api: SlurmApi;
  log: Logger;
  /** The folder for an execution's state ("namespace/name" → path), shared with the Slurm nodes. */
  stateDir: (execution: string) => string;
  /** The plans of every stage of the attempt whose first stage is `first`, in order (the planner writes their spec files). */
  planStages: (first: StagePlan) => StagePlan[];
  partition?: string;
  account?: string;
  qos?: string;
  /**
   * Minutes added to requirements.time for the job's Slurm time limit, for configure,
   * publish and pauses (odop enforces requirements.time on the run stage itself,
   * excluding paused time; Slurm's limit is the backstop). Default 10.
   */
  timeLimitSlackMinutes?: number;
  /** How often running jobs are looked at for onChange, and how old the shared job list may be. Default 500 ms. */
  pollMs?: number;
  /** How long stop() waits for Slurm to report the job ended. Default 60 s. */
  stopTimeoutMs?: number;
};

const MARK = { job: "job.json", submitting: "submitting", paused: "paused", stopped: "stopped" } as const;

type Watched = { ref: StageRef; jobId: number; signature: string };

export class SlurmBackend implements Backend {
  readonly kind = "slurm" as const;
  readonly #d: SlurmBackendDeps;
  readonly #listeners = new Set<(ref: StageRef) => void>();
  /** Attempts with a live job, by "execution#attempt", for onChange. */
  readonly #watched = new Map<string, Watched>();
  #jobs: { at: number; byId: Map<number, SlurmJob>; pending?: Promise<Map<number, SlurmJob>> } = { at: 0, byId: new Map() };
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: SlurmBackendDeps) {
    this.#d = deps;
  }

  async start(plan: StagePlan): Promise<StageState> {
    const dir = this.#attemptDir(plan);
    const existing = await this.#record(plan, dir);
    if (existing.jobId !== undefined || existing.stopped) return this.#observe(plan, existing);
    const plans = this.#d.planStages(plan);
    if (plans[0]?.stage !== plan.stage) {
      // A later stage of an attempt whose job was never recorded: its earlier stages would run again.
      return { state: "lost", reason: "JobGone", message: `no Slurm job is recorded for attempt ${plan.attempt}; ${plan.stage} is not its first stage, so nothing is submitted` };
    }
    const job = this.#submission(plan, plans, dir);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, MARK.submitting), `${job.comment}\n`);
    const { jobId } = await this.#d.api.submit(job).catch((error: unknown) => {
      // Refused for good: nothing was submitted, forget the attempt's submission.
      if ((error as { transient?: unknown }).transient !== true) rmSync(join(dir, MARK.submitting), { force: true });
      throw error;
    });
    writeAtomic(join(dir, MARK.job), JSON.stringify({ jobId, comment: job.comment, node: plan.node, cpus: job.cpusPerTask }));
    this.#d.log.info({ execution: plan.execution, attempt: plan.attempt, jobId, node: plan.node, cpus: job.cpusPerTask }, "slurm job submitted");
    this.#watch(plan, jobId);
    return this.#observe(plan, { ...existing, jobId });
  }

  async observe(ref: StageRef): Promise<StageState> {
    const dir = this.#attemptDir(ref);
    return this.#observe(ref, await this.#record(ref, dir));
  }

  async pause(ref: StageRef): Promise<void> {
    const dir = this.#attemptDir(ref);
    const record = await this.#record(ref, dir);
    const state = await this.#observe(ref, record);
    if (state.state !== "running" || record.jobId === undefined) return;
    if (!record.started.has(ref.stage) || state.reason === "JobPending") {
      throw new StageNotStartedError(`${ref.stage} of Slurm job ${record.jobId} has not started yet; pause it once it runs`);
    }
    // Where slurmrestd signals the whole job, the batch script's trap stops the running step (script.ts).
    const signal = this.#d.api.signalReaches === "steps" ? "SIGSTOP" : PAUSE_SIGNAL;
    await this.#d.api.signal(record.jobId, signal);
    writeFileSync(join(dir, MARK.paused), `${new Date().toISOString()}\n`);
    this.#d.log.info({ execution: ref.execution, jobId: record.jobId, stage: ref.stage, signal }, "slurm job step paused");
  }

  async resume(ref: StageRef): Promise<void> {
    const dir = this.#attemptDir(ref);
    const record = await this.#record(ref, dir);
    if (record.jobId !== undefined && record.paused) {
      await this.#d.api.signal(record.jobId, "SIGCONT");
      this.#d.log.info({ execution: ref.execution, jobId: record.jobId, stage: ref.stage }, "slurm job steps continued (SIGCONT)");
    }
    rmSync(join(dir, MARK.paused), { force: true });
  }

  async stop(ref: StageRef): Promise<void> {
    const dir = this.#attemptDir(ref);
    const record = await this.#record(ref, dir);
    mkdirSync(dir, { recursive: true });
    if (!record.stopped) writeFileSync(join(dir, MARK.stopped), `${new Date().toISOString()}\n`);
    if (record.jobId === undefined) return;
    const jobId = record.jobId;
    const job = await this.#d.api.job(jobId);
    if (job === undefined || hasEnded(job.state)) return;
    if (record.paused) await this.#d.api.signal(jobId, "SIGCONT");
    await this.#d.api.cancel(jobId);
    const timeoutMs = this.#d.stopTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await this.#d.api.job(jobId);
      if (now === undefined || (hasEnded(now.state) && !now.flags.includes("COMPLETING"))) break;
      if (Date.now() >= deadline) throw new StageStillStoppingError(`Slurm job ${jobId} is still ${now.state} ${Math.round(timeoutMs / 1000)} s after it was cancelled`);
      await sleep(Math.min(250, this.#d.pollMs ?? 500));
    }
    this.#d.log.info({ execution: ref.execution, jobId }, "slurm job cancelled");
  }

  onChange(listener: (ref: StageRef) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Stops polling; the backend must not be used afterwards. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  #attemptDir(ref: StageRef): string {
    return join(this.#d.stateDir(ref.execution), `slurm-${ref.attempt}`);
  }

  #submission(plan: StagePlan, plans: readonly StagePlan[], dir: string): JobSubmission {
    const task = plan.task;
    const cpus = Math.max(1, plan.cores.length);
    const workspace = plan.env["ODOP_WORKSPACE"] ?? plan.cwd;
    const script = batchScript({
      execution: plan.execution,
      attempt: plan.attempt,
      stateDir: dir,
      cpusPerTask: cpus,
      stages: plans.map((p) => ({
        stage: p.stage,
        argv: p.argv,
        cwd: p.cwd,
        stdout: join(workspace, "logs", `${p.stage}-${p.attempt}.out`),
        stderr: join(workspace, "logs", `${p.stage}-${p.attempt}.err`),
      })),
    });
    const limit = task.spec.requirements?.time === undefined ? undefined : parseDuration(task.spec.requirements.time);
    const memory = task.spec.requirements?.memory;
    const memoryQuantity = memory?.max ?? memory?.min;
    const memoryBytes = memoryQuantity === undefined ? undefined : parseQuantity(memoryQuantity);
    const name = plan.execution.slice(plan.execution.indexOf("/") + 1);
    const d = this.#d;
    return {
      name: `odop-${name}`.slice(0, 200),
      comment: commentOf(plan),
      script,
      workingDirectory: workspace,
      standardOutput: join(dir, "job.out"),
      environment: jobEnvironment(plan.env),
      ...(plan.node === "" ? {} : { requiredNodes: plan.node }),
      ...(d.partition === undefined ? {} : { partition: d.partition }),
      ...(d.account === undefined ? {} : { account: d.account }),
      ...(d.qos === undefined ? {} : { qos: d.qos }),
      cpusPerTask: cpus,
      // Slurm has one memory figure: the ceiling (max) when there is one, so the job is not killed below it.
      ...(memoryBytes === undefined ? {} : { memoryPerNodeMiB: Math.max(1, Math.ceil(Number(toUnits(memoryBytes)) / 2 ** 20)) }),
      ...(limit === undefined ? {} : { timeLimitMinutes: Math.ceil(limit / 60_000) + (d.timeLimitSlackMinutes ?? 10) }),
    };
  }

  /** Reads the attempt's folder; adopts a job whose submission's answer was lost. */
  async #record(ref: StageRef, dir: string): Promise<AttemptRecord> {
    const { started, exitCodes } = readStageFiles(dir);
    let jobId = jobIdOf(readText(join(dir, MARK.job)));
    if (jobId === undefined) {
      const comment = readText(join(dir, MARK.submitting))?.trim();
      if (comment !== undefined) jobId = await this.#adopt(ref, dir, comment);
    }
    if (jobId !== undefined && exitCodes.size < started.size) this.#watch(ref, jobId);
    return {
      ...(jobId === undefined ? {} : { jobId }),
      started,
      exitCodes,
      paused: existsSync(join(dir, MARK.paused)),
      stopped: existsSync(join(dir, MARK.stopped)),
    };
  }

  async #adopt(ref: StageRef, dir: string, comment: string): Promise<number | undefined> {
    const jobs = await this.#jobList(0);
    const found = [...jobs.values()].find((j) => j.comment === comment);
    if (found === undefined) {
      // Never reached slurmctld: the next start submits it.
      rmSync(join(dir, MARK.submitting), { force: true });
      return undefined;
    }
    writeAtomic(join(dir, MARK.job), JSON.stringify({ jobId: found.jobId, comment, adopted: true }));
    this.#d.log.warn({ execution: ref.execution, attempt: ref.attempt, jobId: found.jobId }, "adopted a slurm job whose submission was not recorded");
    return found.jobId;
  }

  async #observe(ref: StageRef, recorded: AttemptRecord): Promise<StageState> {
    let record = recorded;
    const code = record.exitCodes.get(ref.stage);
    const where = record.jobId === undefined ? {} : { slurmJobId: record.jobId };
    // An exit code of 0 is the whole story; anything else may have a reason in the job's state.
    if (record.jobId === undefined || code === 0 || (record.stopped && code === undefined)) return { ...observeStage(ref.stage, record, undefined), ...where };
    const job = await this.#job(record.jobId);
    if (code === undefined && job !== undefined && hasEnded(job.state)) {
      // The job may have ended after the files were read: the exit code is written before the job ends.
      const late = readExitCode(join(this.#attemptDir(ref), stageFiles(ref.stage).exit));
      if (late !== undefined) record = { ...record, exitCodes: new Map([...record.exitCodes, [ref.stage, late]]) };
    }
    return { ...observeStage(ref.stage, record, job), ...where };
  }

  async #job(jobId: number): Promise<SlurmJob | undefined> {
    const listed = (await this.#jobList(this.#d.pollMs ?? 500)).get(jobId);
    return listed ?? (await this.#d.api.job(jobId));
  }

  /** slurmctld's jobs, shared by every observation within `maxAgeMs`. */
  async #jobList(maxAgeMs: number): Promise<Map<number, SlurmJob>> {
    const cache = this.#jobs;
    if (Date.now() - cache.at <= maxAgeMs && cache.at > 0) return cache.byId;
    if (cache.pending !== undefined) return cache.pending;
    const pending = this.#d.api.jobs().then(
      (jobs) => {
        this.#jobs = { at: Date.now(), byId: new Map(jobs.map((j) => [j.jobId, j])) };
        return this.#jobs.byId;
      },
      (error: unknown) => {
        delete cache.pending;
        throw error;
      },
    );
    cache.pending = pending;
    return pending;
  }

  #watch(ref: StageRef, jobId: number): void {
    const key = `${ref.execution}#${ref.attempt}`;
    if (!this.#watched.has(key)) this.#watched.set(key, { ref: { execution: ref.execution, stage: ref.stage, attempt: ref.attempt }, jobId, signature: "" });
    this.#schedulePoll();
  }

  #schedulePoll(): void {
    if (this.#timer !== undefined || this.#closed || this.#watched.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#poll().then(
        () => this.#schedulePoll(),
        (error: unknown) => {
          this.#d.log.debug({ err: error }, "slurm job poll failed");
          this.#schedulePoll();
        },
      );
    }, this.#d.pollMs ?? 500);
    this.#timer.unref();
  }

  /** Tells listeners about attempts whose job state or stage files changed; forgets ended ones. */
  async #poll(): Promise<void> {
    const jobs = await this.#jobList(0);
    for (const [key, w] of this.#watched) {
      const { started, exitCodes } = readStageFiles(this.#attemptDir(w.ref));
      const files = STAGES.map((s) => `${started.has(s) ? "s" : "-"}${exitCodes.get(s) ?? "-"}`).join(",");
      const job = jobs.get(w.jobId);
      const signature = `${job?.state ?? "gone"}|${job?.flags.join("+") ?? ""}|${files}`;
      if (signature === w.signature) continue;
      w.signature = signature;
      const current = STAGES.find((s) => exitCodes.get(s) !== 0 && started.has(s));
      const ref = { ...w.ref, stage: current ?? w.ref.stage };
      if (job === undefined || hasEnded(job.state)) this.#watched.delete(key);
      for (const listener of this.#listeners) listener(ref);
    }
  }
}

/**
 * The job's environment: the stage's, without SLURM_* variables. slurmd sets the job's
 * own; a submitter's (odop running inside an allocation, or SLURM_JWT, a credential)
 * would leak and mislead srun in the job (with SLURM_JWT set, srun authenticates with it).
 */
export function jobEnvironment(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith("SLURM_")));
}

/** The comment that identifies an attempt's job: the execution's uid, name and attempt (no spaces: `scontrol -o` splits on them). */
export function commentOf(plan: StagePlan): string {
  return `odop.io/execution-id=${plan.opExecution.spec.executionId},execution=${plan.execution},attempt=${plan.attempt}`;
}

function jobIdOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    const id = (JSON.parse(text) as { jobId?: unknown }).jobId;
    return typeof id === "number" && Number.isInteger(id) && id > 0 ? id : undefined;
  } catch {
    return undefined; // a torn write: the submitting mark still stands for it
  }
}

/** Which stages started and the exit codes the batch script recorded, from the attempt's folder. */
function readStageFiles(dir: string): { started: Set<StageName>; exitCodes: Map<StageName, number> } {
  const started = new Set<StageName>();
  const exitCodes = new Map<StageName, number>();
  for (const stage of STAGES) {
    const files = stageFiles(stage);
    if (existsSync(join(dir, files.started))) started.add(stage);
    const code = readExitCode(join(dir, files.exit));
    if (code !== undefined) exitCodes.set(stage, code);
  }
  return { started, exitCodes };
}

function readExitCode(path: string): number | undefined {
  const text = readText(path)?.trim();
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
