/**
 * What every backend runs the same way, whatever unit it starts (process, pod, Slurm step):
 * the Python-callable launcher and the thread count a stage announces.
 */
import type { OpTask } from "../api/optask.ts";

/** Calls `module.function(*trigger_files)`; an int result is the exit code, None is 0. */
export const PYTHON_CALL = [
  "import importlib, os, sys",
  "files = [f for f in os.environ.get('ODOP_TRIGGER_FILES', '').split('\\n') if f]",
  "result = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])(*files)",
  "sys.exit(result if isinstance(result, int) else 0)",
].join("\n");

/** Threads to announce (ODOP_THREADS, OMP_NUM_THREADS): the cores it got, within requirements.threads. */
export function threadCount(task: OpTask, cores: number): number {
  const t = task.spec.requirements?.threads;
  const min = t?.min ?? 1;
  const max = t?.max ?? Math.max(cores, min);
  return Math.min(max, Math.max(min, cores));
}
