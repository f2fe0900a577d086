/**
 * The execution's workspace: the one folder that the configure, run and publish stages
 * share. Every workspace-relative path goes through resolveInWorkspace, which is what
 * keeps a stage from reading or writing outside it (DESIGN.md §7).
 */
import { mkdir, readlink, realpath } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { errnoCode, StagingError } from "./errors.ts";

export type WorkspaceLayout = {
  /** Where configure stages inputs by convention (`to: inputs/...`). */
  readonly inputs: string;
  /** Where the run writes what publish sends out (`from: outputs/...`). */
  readonly outputs: string;
  /** Stage and run logs. */
  readonly logs: string;
};

/** The conventional subfolders of a workspace; inputs and outputs may still name any relative path. */
export function workspaceLayout(workspace: string): WorkspaceLayout {
  const root = resolve(workspace);
  return { inputs: join(root, "inputs"), outputs: join(root, "outputs"), logs: join(root, "logs") };
}

/** Creates the workspace and its subfolders (idempotent: a retried configure finds them in place). */
export async function prepareWorkspace(workspace: string): Promise<WorkspaceLayout> {
  const layout = workspaceLayout(workspace);
  for (const folder of [layout.inputs, layout.outputs, layout.logs]) await mkdir(folder, { recursive: true });
  return layout;
}

/**
 * The absolute path of `relativePath` inside `workspace`. Refuses absolute paths, ".."
 * segments, and paths whose deepest existing ancestor resolves (through symlinks) to a
 * place outside the workspace. Parts of the path that do not exist yet are created later
 * by staging itself as real folders, so they cannot lead elsewhere.
 *
 * The check is made when called; callers resolve right before each copy, because an
 * earlier copy (or the run stage) may have added symlinks since.
 */
export async function resolveInWorkspace(workspace: string, relativePath: string): Promise<string> {
  const escape = (why: string) =>
    new StagingError("OutsideWorkspace", `path ${JSON.stringify(relativePath)} escapes the workspace: ${why}`);
  if (relativePath === "") throw escape("it is empty");
  if (relativePath.includes("\0")) throw escape("it contains a NUL character");
  if (isAbsolute(relativePath)) throw escape("it is absolute; give a path relative to the workspace");
  if (relativePath.split(/[\\/]/).includes("..")) throw escape("it has a '..' segment");

  const root = resolve(workspace);
  const target = resolve(root, relativePath);
  const realRoot = await realWorkspace(root);
  const realTarget = await realpathOfDeepest(target);
  if (!isInside(realRoot, realTarget)) throw escape(`it resolves through a symlink to ${realTarget}`);
  return target;
}

/** The workspace's real path; a missing workspace is an error, not something to create here. */
export async function realWorkspace(workspace: string): Promise<string> {
  try {
    return await realpath(workspace);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") throw new StagingError("Io", `workspace ${workspace} does not exist`, { cause: error });
    throw new StagingError("Io", `workspace ${workspace} cannot be opened: ${String(error)}`, { cause: error });
  }
}

/**
 * The real path `path` would have once its missing parts are created: the realpath of
 * its deepest existing ancestor (the path itself when it exists) joined with the parts
 * that do not exist yet. A dangling symlink on the way counts as where it points, since
 * creating a folder or file through it would land there.
 */
export async function realpathOfDeepest(path: string, depth = 0): Promise<string> {
  const missing: string[] = [];
  let current = resolve(path);
  for (;;) {
    try {
      return join(await realpath(current), ...missing.reverse());
    } catch (error) {
      const code = errnoCode(error);
      // ENOTDIR: an ancestor is a file; the copy will fail later with a clear message.
      if (code !== "ENOENT" && code !== "ENOTDIR") throw error;
    }
    const link = await readlink(current).catch(() => undefined);
    if (link !== undefined) {
      if (depth >= MAX_LINK_DEPTH) throw new StagingError("Io", `${path}: too many levels of symlinks`);
      return realpathOfDeepest(join(resolve(dirname(current), link), ...missing.reverse()), depth + 1);
    }
    const parent = dirname(current);
    if (parent === current) return resolve(path);
    missing.push(basename(current));
    current = parent;
  }
}

/** As Linux's limit on symlinks followed in one lookup. */
const MAX_LINK_DEPTH = 40;

/** True when `path` is `root` or below it (both absolute and normalised). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
