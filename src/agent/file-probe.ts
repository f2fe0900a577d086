/**
 * What file triggers look at: files in a folder, and which files some process still
 * holds open for writing. A file counts as "closed" when no process has it open for
 * writing (from /proc/PID/fd and fdinfo flags) — the exact event ODOP waits for, and
 * one that works on file systems that deliver no inotify events (NFS, Lustre), where a
 * settle time alone would either wait too long or fire on a half-written file.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join, matchesGlob } from "node:path";
import { listPids } from "./procfs.ts";

export type FileInfo = { path: string; mtimeMs: number; size: number };

export interface FileProbe {
  /** Regular files directly in `folder` whose names match `pattern`; [] when the folder is missing. */
  list(folder: string, pattern: string): FileInfo[];
  stat(path: string): FileInfo | undefined;
  /** Paths that some process holds open for writing now. */
  openForWriting(): ReadonlySet<string>;
}

export const localFileProbe: FileProbe = {
  list(folder, pattern) {
    let entries;
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch {
      return [];
    }
    const out: FileInfo[] = [];
    for (const entry of entries) {
      if (!entry.isFile() || !matchesGlob(entry.name, pattern)) continue;
      const info = this.stat(join(folder, entry.name));
      if (info !== undefined) out.push(info);
    }
    return out;
  },

  stat(path) {
    try {
      const s = statSync(path);
      return s.isFile() ? { path, mtimeMs: s.mtimeMs, size: s.size } : undefined;
    } catch {
      return undefined;
    }
  },

  openForWriting() {
    const open = new Set<string>();
    let pids: number[];
    try {
      pids = listPids();
    } catch {
      return open;
    }
    for (const pid of pids) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue; // gone, or not ours to read
      }
      for (const fd of fds) {
        try {
          const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
          if (!target.startsWith("/")) continue; // pipes, sockets, anon inodes
          const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))?.[1];
          // O_WRONLY = 01, O_RDWR = 02
          if (flags !== undefined && (Number.parseInt(flags, 8) & 3) !== 0) open.add(target);
        } catch {
          // closed meanwhile
        }
      }
    }
    return open;
  },
};
