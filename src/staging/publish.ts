/**
 * The publish stage: copy each output out of the execution's workspace after the run.
 * Outputs are checked first, then copied in order; the first that fails stops the
 * stage, and its error names it (index and from).
 */
import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { z } from "zod";
import type { Output } from "../api/optask.ts";
import { copyPath, type CopyStats } from "./copy.ts";
import { stageEach } from "./each.ts";
import { errnoCode, StagingError, toStagingError } from "./errors.ts";
import { httpOptionsOf, signalOf, type StageItemResult, type StageOptions } from "./events.ts";
import { upload } from "./http.ts";
import { namesFolder, parseLocation, redactLocation, s3Unsupported, type ParsedLocation } from "./location.ts";
import { realWorkspace, resolveInWorkspace } from "./workspace.ts";

/** An output as written in an OpTask (optional may be left out). */
export type StageOutput = z.input<typeof Output>;

type OutputPlan = {
  readonly index: number;
  readonly label: string;
  readonly from: string;
  readonly to: string;
  readonly location: Exclude<ParsedLocation, { kind: "s3" }>;
  readonly optional: boolean;
};

/**
 * Copies `outputs` out of `workspace`. `from` is relative to the workspace (a file, or
 * a folder copied recursively); `to` is an absolute path or file:/// URL (ending in '/':
 * the folder that receives the output under its own base name; parents are created),
 * or an http(s):// URL that receives the file by PUT (ending in '/': the URL of the
 * folder, the base name is appended). Symlinks in outputs are followed only while they
 * stay inside the workspace. A missing optional output is skipped and reported; any
 * other failure throws a StagingError naming the output.
 */
export async function stageOut(workspace: string, outputs: readonly StageOutput[], options: StageOptions = {}): Promise<StageItemResult[]> {
  const plans = outputs.map((output, index) => planOutput(output, index));
  return stageEach(workspace, plans, (plan) => plan.from, (plan) => stageOutput(workspace, plan, options), options);
}

function planOutput(output: StageOutput, index: number): OutputPlan {
  const label = `output ${index} (from ${output.from})`;
  try {
    const location = parseLocation(output.to);
    if (location.kind === "s3") throw s3Unsupported(output.to);
    return { index, label, from: output.from, to: output.to, location, optional: output.optional ?? false };
  } catch (error) {
    throw toStagingError(error, label).within(label);
  }
}

async function stageOutput(workspace: string, plan: OutputPlan, options: StageOptions): Promise<StageItemResult> {
  try {
    const source = await resolveInWorkspace(workspace, plan.from);
    // Checked before copying: only a missing source makes an optional output skippable,
    // never a destination that answers 404.
    if (!(await exists(source))) {
      const skipped = { type: "skipped", direction: "out", index: plan.index, from: plan.from, to: redactLocation(plan.to) } as const;
      if (plan.optional) return { ...skipped, note: "optional output not found" };
      throw new StagingError("NotFound", `${plan.from}: not found in the workspace`);
    }
    const { stats, shownTo } = await copyOut(workspace, source, plan, options);
    return { type: "staged", direction: "out", index: plan.index, from: plan.from, to: shownTo, ...stats };
  } catch (thrown) {
    throw toStagingError(thrown, plan.label, options.signal).within(plan.label);
  }
}

/** True when `path` exists, symlinks followed (a dangling link is a missing output). */
async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return false;
    throw toStagingError(error, path);
  }
}

async function copyOut(
  workspace: string,
  source: string,
  plan: OutputPlan,
  options: StageOptions,
): Promise<{ stats: CopyStats; shownTo: string }> {
  if (plan.location.kind === "file") {
    const dest = namesFolder(plan.to) ? join(plan.location.path, basename(source)) : plan.location.path;
    const sourceRoot = await realWorkspace(workspace);
    return { stats: await copyPath(source, dest, { sourceRoot, confineDestination: false, ...signalOf(options) }), shownTo: dest };
  }
  await requireRegularFile(source, plan.from);
  const url = new URL(plan.location.url);
  if (url.pathname.endsWith("/")) url.pathname += encodeURIComponent(basename(source));
  const { bytes } = await upload(source, url, httpOptionsOf(options));
  return { stats: { kind: "file", files: 1, bytes }, shownTo: redactLocation(url.toString()) };
}

/** An HTTP destination takes one file: a folder is refused rather than guessed at (zip? many PUTs?). */
async function requireRegularFile(source: string, from: string): Promise<void> {
  const info = await stat(source);
  if (info.isDirectory()) {
    throw new StagingError(
      "InvalidLocation",
      `${from} is a folder, and an http(s) destination takes one file: have the run pack it (e.g. tar) and publish the archive, or publish the folder to a file destination`,
    );
  }
  if (!info.isFile()) throw new StagingError("Io", `${from} is not a regular file`);
}
