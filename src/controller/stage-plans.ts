/**
 * What each stage of an execution runs, as a StagePlan.
 *
 * StagePlanner is for the process-based backends (local, and Slurm steps): argv,
 * environment, working directory, cores. configure and publish run `odop stage
 * <spec.json>` (the staging code, in a pinned child process like the run stage); run
 * executes the task's command, bash script or Python callable. Every stage sees ODOP_*
 * variables describing the execution. It writes the spec and script files it needs
 * under the execution's folder.
 *
 * podPlanner is for the Kubernetes backend, which builds each attempt's pod from the
 * task and the execution (backends/kubernetes/pod-spec.ts): it plans the node and cores
 * only, writes nothing on the controller's disk, and runs image-only tasks (the image's
 * entrypoint), which have no process form.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { OpExecution, StageName } from "../api/opexecution.ts";
import type { OpTask } from "../api/optask.ts";
import { PYTHON_CALL, threadCount } from "../backends/run-forms.ts";
import type { StagePlan } from "../backends/types.ts";
import { formatCpuset } from "../api/cpuset.ts";
import type { StageSpec } from "../staging/stage-spec.ts";

export type PlannerOptions = {
  /** Where executions' folders live: <root>/<namespace>/<name>/{workspace,state}. */
  executionsRoot: string;
  /** The program and arguments that start the odop CLI (for `odop stage`). */
  odopCommand: readonly string[];
  /** Environment every stage inherits (the user's, for modules, conda, proxies). */
  baseEnv: Readonly<Record<string, string | undefined>>;
  /** Embedded secrets: valueFrom.secretKeyRef {name, key} reads <secretsDir>/<name>/<key>. */
  secretsDir: string;
  /** Folders put in front of PYTHONPATH for module/function tasks. */
  pythonPath: readonly string[];
};

export class StagePlanError extends Error {
  override name = "StagePlanError";
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The stages an execution of `task` goes through, in order. */
export function stagesOf(task: OpTask): StageName[] {
  const stages: StageName[] = [];
  if ((task.spec.stages?.configure?.inputs ?? []).length > 0) stages.push("configure");
  stages.push("run");
  if ((task.spec.stages?.publish?.outputs ?? []).length > 0) stages.push("publish");
  return stages;
}

/** What the execution reconciler asks of a planner. */
export interface Planner {
  /** Builds the plan of one stage. Throws StagePlanError when the task cannot run on this planner's backend. */
  plan(stage: StageName, task: OpTask, execution: OpExecution, attempt: number, cores: readonly number[]): StagePlan;
  /** Where the execution's workspace is, for status.backend.workspace; undefined when it is not on this machine. */
  workspace(execution: OpExecution): string | undefined;
}

function commonPlan(stage: StageName, task: OpTask, execution: OpExecution, attempt: number, cores: readonly number[]) {
  const ref = { execution: `${execution.metadata.namespace ?? "default"}/${execution.metadata.name ?? ""}`, stage, attempt };
  return { ...ref, task, opExecution: execution, node: execution.status?.node ?? "", cores, ioBound: task.spec.requirements?.ioBound ?? false };
}

/** The planner of a backend that builds its own units from the task (pods): no argv, no files. */
export const podPlanner: Planner = {
  plan: (stage, task, execution, attempt, cores) => ({ ...commonPlan(stage, task, execution, attempt, cores), argv: [], env: {}, cwd: "" }),
  workspace: () => undefined,
};

export class StagePlanner implements Planner {
  readonly #options: PlannerOptions;

  constructor(options: PlannerOptions) {
    this.#options = options;
  }

  executionDir(execution: OpExecution): string {
    return join(this.#options.executionsRoot, execution.metadata.namespace ?? "default", execution.metadata.name ?? "");
  }

  workspace(execution: OpExecution): string {
    return join(this.executionDir(execution), "workspace");
  }

  /** Builds the plan (and writes the spec or script file it needs). Throws StagePlanError when the task cannot run here. */
  plan(stage: StageName, task: OpTask, execution: OpExecution, attempt: number, cores: readonly number[]): StagePlan {
    const workspace = this.workspace(execution);
    const state = join(this.executionDir(execution), "state");
    mkdirSync(join(workspace, "logs"), { recursive: true });
    mkdirSync(state, { recursive: true });
    const env = this.#env(task, execution, workspace, cores);
    const common = { ...commonPlan(stage, task, execution, attempt, cores), env };
    if (stage === "run") return { ...common, ...this.#run(task, execution, workspace, state) };
    const spec: StageSpec =
      stage === "configure"
        ? { stage, workspace, inputs: task.spec.stages?.configure?.inputs ?? [] }
        : { stage, workspace, outputs: task.spec.stages?.publish?.outputs ?? [] };
    const specPath = join(state, `${stage}-${attempt}.spec.json`);
    writeFileSync(specPath, JSON.stringify(spec, null, 2));
    return { ...common, argv: [...this.#options.odopCommand, "stage", specPath], cwd: workspace };
  }

  #run(task: OpTask, execution: OpExecution, workspace: string, state: string): { argv: string[]; cwd: string } {
    const run = task.spec.run;
    const args = execution.spec.options?.args ?? run.args ?? [];
    const dir = run.workingDir === undefined ? workspace : isAbsolute(run.workingDir) ? run.workingDir : join(workspace, run.workingDir);
    if (run.command !== undefined) return { argv: [...run.command, ...args], cwd: dir };
    if (run.script !== undefined) {
      const script = join(state, "run.sh");
      writeFileSync(script, run.script, { mode: 0o755 });
      return { argv: ["bash", script, ...args], cwd: dir };
    }
    if (run.module !== undefined && run.function !== undefined) {
      return { argv: ["python3", "-c", PYTHON_CALL, run.module, run.function, ...args], cwd: dir };
    }
    throw new StagePlanError("NotRunnableLocally", "the local backend runs run.command, run.script or run.module; run.image needs the kubernetes backend");
  }

  #env(task: OpTask, execution: OpExecution, workspace: string, cores: readonly number[]): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.#options.baseEnv)) if (v !== undefined) env[k] = v;
    const threads = threadCount(task, cores.length);
    const files = execution.spec.trigger.files ?? [];
    Object.assign(env, {
      ODOP_TASK: task.metadata.name ?? "",
      ODOP_NAMESPACE: execution.metadata.namespace ?? "default",
      ODOP_EXECUTION: execution.metadata.name ?? "",
      ODOP_EXECUTION_ID: execution.spec.executionId,
      ODOP_TRIGGER_REASON: execution.spec.trigger.reason,
      ODOP_TRIGGER_FILES: files.join("\n"),
      ODOP_WORKSPACE: workspace,
      ODOP_INPUTS: join(workspace, "inputs"),
      ODOP_OUTPUTS: join(workspace, "outputs"),
      ODOP_CORES: formatCpuset(cores),
      ODOP_THREADS: String(threads),
      OMP_NUM_THREADS: String(threads),
    });
    if (this.#options.pythonPath.length > 0) {
      env["PYTHONPATH"] = [...this.#options.pythonPath, ...(env["PYTHONPATH"] === undefined ? [] : [env["PYTHONPATH"]])].join(":");
    }
    for (const entry of [...(task.spec.run.env ?? []), ...(execution.spec.options?.env ?? [])]) {
      if (entry.value !== undefined) env[entry.name] = entry.value;
      else if (entry.valueFrom !== undefined) env[entry.name] = this.#secret(entry.valueFrom.secretKeyRef);
    }
    return env;
  }

  #secret(ref: { name: string; key: string }): string {
    const path = join(this.#options.secretsDir, ref.name, ref.key);
    try {
      return readFileSync(path, "utf8").replace(/\n$/, "");
    } catch {
      throw new StagePlanError("SecretMissing", `secret ${ref.name}/${ref.key} not found: the embedded mode reads it from ${path}`);
    }
  }
}
