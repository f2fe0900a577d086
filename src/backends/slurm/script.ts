/**
 * The batch script of one execution attempt (pure): configure, run and publish as
 * separate job steps (`srun`), in order, each recording when it started and how it
 * ended in the attempt's state folder, so that odop reads a stage's exit code even
 * without Slurm's accounting database (slurmrestd's job info has no steps without
 * slurmdbd) and after Slurm forgot the job.
 *
 * No shell injection: nothing from a task or an execution is spliced into shell syntax.
 * Every value is a single-quoted word (shellWord), NUL bytes are refused, and the
 * stage's program and arguments are words of the `srun` command line, never parsed by
 * a shell. A task's `run.script` is a file the run step executes with bash (the
 * planner writes it), not text of this script.
 */
import type { StageName } from "../../api/opexecution.ts";

export type ScriptStage = {
  stage: StageName;
  argv: readonly string[];
  cwd: string;
  /** Files for the step's stdout and stderr. */
  stdout: string;
  stderr: string;
};

export type BatchScript = {
  /** For the header comment: "namespace/name". */
  execution: string;
  attempt: number;
  /** Where each stage's .started and .exit files go (one folder per attempt). */
  stateDir: string;
  cpusPerTask: number;
  stages: readonly ScriptStage[];
};

/**
 * The signal that pauses an attempt when slurmrestd can only signal the whole job
 * (openapi/v0.0.38 signals the batch script and srun, not the steps' tasks): the
 * script's trap stops the running step with `scancel --signal=STOP <job>.<step>`.
 * SIGURG, because srun neither forwards it nor dies of it (its default is to ignore).
 */
export const PAUSE_SIGNAL = "SIGURG";

/** Files the script writes in stateDir for a stage. */
export const stageFiles = (stage: StageName) => ({ started: `${stage}.started`, exit: `${stage}.exit` }) as const;

/** One shell word that stands for exactly `value`. */
export function shellWord(value: string): string {
  if (value.includes("\0")) throw new Error(`a NUL byte cannot be passed to a program: ${JSON.stringify(value.slice(0, 80))}`);
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function batchScript(spec: BatchScript): string {
  if (!Number.isInteger(spec.cpusPerTask) || spec.cpusPerTask < 1) throw new Error(`cpusPerTask must be a whole number ≥ 1, got ${spec.cpusPerTask}`);
  if (spec.stages.length === 0) throw new Error("a batch script needs at least one stage");
  const lines = [
    "#!/bin/bash",
    // The header is a comment: the execution's name is quoted as a word all the same, as a newline in it would end the comment.
    `# odop: OpExecution ${shellWord(spec.execution)}, attempt ${spec.attempt}. Generated; every value is one quoted word.`,
    "set -u",
    `odop_state=${shellWord(spec.stateDir)}`,
    // Pausing through a signal to the whole job (PAUSE_SIGNAL reaches this script, srun ignores it):
    // the script stops the step that runs now, and continues it on SIGCONT.
    "odop_steps=0",
    "odop_step=",
    'odop_signal_step() { if [ -n "$odop_step" ]; then scancel --signal="$1" "$SLURM_JOB_ID.$odop_step"; fi; }',
    `trap 'odop_signal_step STOP' ${PAUSE_SIGNAL.slice(3)}`,
    "trap 'odop_signal_step CONT' CONT",
    // Records the start, runs the step, records its exit code atomically; a failed step ends the job with its code.
    // srun runs in the background so that traps run while it does (wait returns for them).
    "odop_stage() {",
    '  local stage=$1 chdir=$2 out=$3 err=$4',
    "  shift 4",
    '  date +%s.%N > "$odop_state/$stage.started"',
    `  srun --job-name="$stage" --nodes=1 --ntasks=1 --cpus-per-task=${spec.cpusPerTask} --cpu-bind=cores --chdir="$chdir" --output="$out" --error="$err" --open-mode=append -- "$@" &`,
    "  local pid=$!",
    "  odop_step=$odop_steps",
    "  odop_steps=$((odop_steps + 1))",
    '  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done',
    '  wait "$pid"',
    "  local rc=$?",
    "  odop_step=",
    '  echo "$rc" > "$odop_state/$stage.exit.tmp" && mv -f "$odop_state/$stage.exit.tmp" "$odop_state/$stage.exit"',
    '  if [ "$rc" -ne 0 ]; then exit "$rc"; fi',
    "}",
  ];
  for (const s of spec.stages) {
    if (s.argv.length === 0) throw new Error(`stage ${s.stage} has no program`);
    lines.push(["odop_stage", s.stage, s.cwd, s.stdout, s.stderr, ...s.argv].map(shellWord).join(" "));
  }
  lines.push("");
  return lines.join("\n");
}
