/**
 * The trigger folders the controller asked an agent to watch (the `watch` of its last push
 * reply), as FolderReports (src/api/agent-push.ts), and a nudge when one changes.
 *
 * Contracts:
 * - {@link FolderWatcher.reports} lists every watched folder now (through the FileProbe of
 *   the file triggers, so the agent and the embedded engine see files the same way): the
 *   regular files directly in it that match its pattern, at most 10,000 (by name), and for
 *   each whether some process holds it open for writing. A folder that cannot be read
 *   gets an `error` and no files.
 * - Which files are open for writing comes from every process's fd table (costly: a
 *   readlink per fd on the node), so it is read only when a listed file is new, changed
 *   size or mtime, or was open the last time; a file that stays unchanged and closed keeps
 *   its verdict. (A file reopened for writing that has not been written yet is seen
 *   closed until it is written to.)
 * - fs.watch on each folder calls `onChange` (debounced by `debounceMs`) so that a push
 *   goes sooner than the next interval; on file systems without inotify events (NFS,
 *   Lustre) the interval alone finds changes. A folder that cannot be watched (missing) is
 *   tried again on each {@link FolderWatcher.reports}.
 */
import { type FSWatcher, statSync, watch } from "node:fs";
import type { FolderReport, WatchRequest } from "../api/agent-push.ts";
// The file triggers' probe (the controller's embedded engine uses it too); it imports
// nothing but node:fs and node:path.
import { type FileProbe, localFileProbe } from "./file-probe.ts";

const MAX_FILES = 10_000;

export interface FolderWatcherOptions {
  probe?: FileProbe;
  onChange: () => void;
  debounceMs?: number;
}

interface Seen {
  size: number;
  mtimeMs: number;
  open: boolean;
}

function key(w: WatchRequest): string {
  return `${w.folder}\0${w.pattern}`;
}

export class FolderWatcher {
  readonly #probe: FileProbe;
  readonly #onChange: () => void;
  readonly #debounceMs: number;
  #requests: WatchRequest[] = [];
  readonly #watchers = new Map<string, FSWatcher>();
  #seen = new Map<string, Seen>();
  #debounce: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: FolderWatcherOptions) {
    this.#probe = options.probe ?? localFileProbe;
    this.#onChange = options.onChange;
    this.#debounceMs = options.debounceMs ?? 50;
  }

  /** The folders to watch now (the controller's last `watch`); true when that changed the set. */
  setWatch(requests: readonly WatchRequest[]): boolean {
    const next = [...new Map(requests.map((r) => [key(r), r])).values()];
    if (next.map(key).join("\n") === this.#requests.map(key).join("\n")) return false;
    this.#requests = next;
    const folders = new Set(next.map((r) => r.folder));
    for (const [folder, watcher] of this.#watchers) {
      if (folders.has(folder)) continue;
      watcher.close();
      this.#watchers.delete(folder);
    }
    this.#watchAll();
    return true;
  }

  get watching(): readonly WatchRequest[] {
    return this.#requests;
  }

  /** Every watched folder as it is now; [] when none is watched. */
  reports(): FolderReport[] {
    if (this.#requests.length === 0) return [];
    this.#watchAll();
    const listed: { request: WatchRequest; error?: string; files: { path: string; size: number; mtimeMs: number }[] }[] = [];
    let check = false;
    for (const request of this.#requests) {
      const error = folderError(request.folder);
      if (error !== undefined) {
        listed.push({ request, error, files: [] });
        continue;
      }
      const files = this.#probe
        .list(request.folder, request.pattern)
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
        .slice(0, MAX_FILES);
      for (const f of files) {
        const seen = this.#seen.get(f.path);
        if (seen === undefined || seen.open || seen.size !== f.size || seen.mtimeMs !== f.mtimeMs) check = true;
      }
      listed.push({ request, files });
    }
    const open = check ? this.#probe.openForWriting() : undefined;
    const seen = new Map<string, Seen>();
    const reports = listed.map(({ request, error, files }): FolderReport => {
      const out = files.map((f) => {
        const isOpen = open === undefined ? (this.#seen.get(f.path)?.open ?? false) : open.has(f.path);
        seen.set(f.path, { size: f.size, mtimeMs: f.mtimeMs, open: isOpen });
        return { path: f.path, size: f.size, mtimeMs: f.mtimeMs, openForWriting: isOpen };
      });
      return { folder: request.folder, pattern: request.pattern, files: out, ...(error === undefined ? {} : { error }) };
    });
    this.#seen = seen;
    return reports;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#debounce);
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  #watchAll(): void {
    if (this.#closed) return;
    for (const { folder } of this.#requests) {
      if (this.#watchers.has(folder)) continue;
      try {
        const watcher = watch(folder, { persistent: false }, () => this.#changed());
        watcher.on("error", () => {
          // The folder went away: drop the watcher; the next reports() tries again.
          watcher.close();
          if (this.#watchers.get(folder) === watcher) this.#watchers.delete(folder);
          this.#changed();
        });
        this.#watchers.set(folder, watcher);
      } catch {
        // missing or unreadable: reported as the folder's error, watched once it exists
      }
    }
  }

  #changed(): void {
    if (this.#closed || this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      if (!this.#closed) this.#onChange();
    }, this.#debounceMs);
  }
}

/** Why `folder` cannot be listed; undefined when it can. */
function folderError(folder: string): string | undefined {
  try {
    return statSync(folder).isDirectory() ? undefined : "not a directory";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such folder" : code === "EACCES" ? "permission denied" : `cannot read: ${code ?? String(error)}`;
  }
}
