/**
 * Local copies for staging. Every file is written to a temporary name in its
 * destination folder, flushed, and renamed into place: a reader (the run stage, or
 * whatever watches a publish destination) sees a file whole or not at all. Folders are
 * filled file by file, replacing files of the same name, so a retried stage that
 * stopped half way simply completes.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, lstat, mkdir, open, readdir, realpath, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { asIoError, errnoCode, StagingError } from "./errors.ts";
import { isInside, realpathOfDeepest } from "./workspace.ts";

export type CopyStats = {
  readonly kind: "file" | "folder";
  readonly files: number;
  readonly bytes: number;
};

export type CopyGuard = {
  /**
   * Real path that every source file must stay inside, symlinks followed: the workspace
   * when publishing, so that a link the run left in outputs/ cannot publish /etc/shadow.
   */
  readonly sourceRoot?: string;
  /**
   * Refuse to write through a folder under the destination that is a symlink: the
   * workspace when staging in, whose top folder resolveInWorkspace has already checked.
   */
  readonly confineDestination: boolean;
  readonly signal?: AbortSignal;
};

/** Temporary name next to `dest`: hidden, unique, and short enough for NAME_MAX. */
export function tempPathFor(dest: string): string {
  const name = basename(dest).slice(0, 200);
  return join(dirname(dest), `.${name}.odop-${randomBytes(6).toString("hex")}.tmp`);
}

/**
 * Copies the file or folder at `source` to `dest` (a file path, or the folder to create or
 * fill). Symlinks in the source are followed, never recreated. Throws StagingError with
 * reason NotFound when `source` does not exist.
 */
export async function copyPath(source: string, dest: string, guard: CopyGuard): Promise<CopyStats> {
  let real: string;
  try {
    real = await realpath(source);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") throw new StagingError("NotFound", `${source}: not found`, { cause: error });
    throw asIoError(error, source);
  }
  const info = await statOf(real, source);
  if (info.isDirectory() && isInside(real, await realpathOfDeepest(dest))) {
    throw new StagingError("Io", `cannot copy the folder ${source} into itself (${dest})`);
  }
  const totals = { files: 0, bytes: 0 };
  await copyEntry(source, dest, guard, new Set(), totals);
  return { kind: info.isDirectory() ? "folder" : "file", ...totals };
}

async function copyEntry(source: string, dest: string, guard: CopyGuard, ancestors: Set<string>, totals: { files: number; bytes: number }) {
  guard.signal?.throwIfAborted();
  const real = await realpathOf(source);
  if (guard.sourceRoot !== undefined && !isInside(guard.sourceRoot, real)) {
    throw new StagingError("OutsideWorkspace", `${source} escapes the workspace: it resolves through a symlink to ${real}`);
  }
  const info = await statOf(real, source);
  if (info.isFile()) {
    await copyFileAtomic(real, dest);
    totals.files += 1;
    totals.bytes += info.size;
    return;
  }
  if (!info.isDirectory()) {
    // Reading a FIFO would block for ever; devices and sockets are not data.
    throw new StagingError("Io", `${source} is neither a regular file nor a folder`);
  }
  if (ancestors.has(real)) throw new StagingError("Io", `${source} is a symlink loop (it leads back to ${real})`);
  await ensureFolder(dest, guard.confineDestination);
  ancestors.add(real);
  try {
    const names = await readdir(real).catch((error: unknown) => {
      throw asIoError(error, `cannot list ${source}`);
    });
    for (const name of names.sort()) await copyEntry(join(source, name), join(dest, name), guard, ancestors, totals);
  } finally {
    ancestors.delete(real);
  }
}

/** Creates `folder`; when confined, an existing symlink there is refused rather than followed. */
async function ensureFolder(folder: string, confined: boolean): Promise<void> {
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    throw asIoError(error, `cannot create the folder ${folder}`);
  }
  if (!confined) return;
  const info = await lstat(folder);
  if (info.isSymbolicLink()) {
    throw new StagingError("OutsideWorkspace", `${folder} escapes the workspace: it is a symlink, and staging does not write through links`);
  }
}

/** Copies one regular file to `dest` through a temporary file (see the module comment). */
export async function copyFileAtomic(source: string, dest: string): Promise<void> {
  try {
    await mkdir(dirname(dest), { recursive: true });
  } catch (error) {
    throw asIoError(error, `cannot create the folder ${dirname(dest)}`);
  }
  const temp = tempPathFor(dest);
  try {
    await copyFile(source, temp, constants.COPYFILE_EXCL);
    // Flush before the rename: after a crash, dest is the old file or the whole new one.
    const handle = await open(temp, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, dest);
  } catch (error) {
    await rm(temp, { force: true });
    throw asIoError(error, `cannot copy ${source} to ${dest}`);
  }
}

async function realpathOf(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    // A dangling link inside a folder being copied: say which one.
    throw asIoError(error, `cannot resolve ${path}`);
  }
}

async function statOf(real: string, shown: string) {
  try {
    return await stat(real);
  } catch (error) {
    throw asIoError(error, `cannot read ${shown}`);
  }
}
