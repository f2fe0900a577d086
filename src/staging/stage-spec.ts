/**
 * The stage spec: the JSON file that a configure or publish stage process reads (`odop
 * stage configure|publish <file>`, run by a backend in a pinned child process, pod or
 * Slurm step). runStageSpec is that process's body; its exit code is the contract with
 * the backend: 0 staged, 1 staging failed, 2 the spec file itself is wrong.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { strict } from "../api/meta.ts";
import { Input, Output } from "../api/optask.ts";
import { formatPath, problemsOf } from "../api/validate.ts";
import { stageIn } from "./configure.ts";
import { toStagingError } from "./errors.ts";
import type { StageEvent, StageOptions } from "./events.ts";
import { stageOut } from "./publish.ts";
import { prepareWorkspace } from "./workspace.ts";

export const STAGE_KINDS = ["configure", "publish"] as const;
export type StageKind = (typeof STAGE_KINDS)[number];

export const StageSpec = strict({
  stage: z.enum(STAGE_KINDS),
  workspace: z.string().min(1).max(4096).regex(/^\//, { error: "must be an absolute path" }),
  inputs: z.array(Input).max(256).optional(),
  outputs: z.array(Output).max(256).optional(),
})
  .refine((s) => s.stage === "configure" || s.inputs === undefined, {
    message: "publish stages outputs only: remove inputs",
    path: ["inputs"],
  })
  .refine((s) => s.stage === "publish" || s.outputs === undefined, {
    message: "configure stages inputs only: remove outputs",
    path: ["outputs"],
  });
export type StageSpec = z.infer<typeof StageSpec>;

/** Exit codes of a stage process. */
export const STAGE_EXIT = { ok: 0, failed: 1, badSpec: 2 } as const;

/** Where a stage process writes: process.stdout and process.stderr, or test buffers. */
export type StageOutputStreams = {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
};

/**
 * Reads, validates and runs the stage spec at `path`. Prints one line per staged or
 * skipped item on stdout, retries and the failure on stderr, and resolves to the exit
 * code; it does not throw.
 */
export async function runStageSpec(path: string, out: StageOutputStreams, options: Omit<StageOptions, "report"> = {}): Promise<number> {
  const spec = await readStageSpec(path);
  if (!spec.ok) {
    for (const line of spec.problems) out.stderr.write(`invalid stage spec ${path}: ${line}\n`);
    return STAGE_EXIT.badSpec;
  }
  const stage = spec.spec;
  const report = (event: StageEvent) => {
    if (event.type === "retry") out.stderr.write(`${formatEvent(event)}\n`);
    else out.stdout.write(`${formatEvent(event)}\n`);
  };
  try {
    const staging = { ...options, report };
    if (stage.stage === "configure") {
      await prepareWorkspace(stage.workspace);
      await stageIn(stage.workspace, stage.inputs ?? [], staging);
    } else {
      await stageOut(stage.workspace, stage.outputs ?? [], staging);
    }
  } catch (error) {
    out.stderr.write(`${stage.stage} failed: ${toStagingError(error, stage.stage, options.signal).message}\n`);
    return STAGE_EXIT.failed;
  }
  out.stdout.write(`${stage.stage} done\n`);
  return STAGE_EXIT.ok;
}

type ReadResult = { ok: true; spec: StageSpec } | { ok: false; problems: string[] };

async function readStageSpec(path: string): Promise<ReadResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    return { ok: false, problems: [`cannot read it: ${error instanceof Error ? error.message : String(error)}`] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, problems: [`not JSON: ${error instanceof Error ? error.message : String(error)}`] };
  }
  const result = StageSpec.safeParse(json);
  if (result.success) return { ok: true, spec: result.data };
  return { ok: false, problems: problemsOf(result.error).map((p) => `${formatPath(p.path)}: ${p.message}`) };
}

/** One progress line; fixed words, data in between. */
export function formatEvent(event: StageEvent): string {
  switch (event.type) {
    case "staged": {
      const verb = event.direction === "in" ? "staged in" : "published";
      const size = event.kind === "folder" ? `${event.files} files, ${event.bytes} bytes` : `${event.bytes} bytes`;
      return `${verb} ${event.from} → ${event.to} (${size})`;
    }
    case "skipped":
      return `skipped ${event.direction === "in" ? "input" : "output"} ${event.index} ${event.from}: ${event.note}`;
    case "retry":
      return `retrying ${event.target} in ${event.delayMs} ms (attempt ${event.attempt} of ${event.attempts} failed: ${event.error})`;
  }
}
