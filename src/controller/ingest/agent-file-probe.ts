/**
 * File triggers on a cluster: the controller does not see the nodes' file systems, the
 * agents do. Each push carries a FolderReport for every folder the controller asked
 * that agent to watch (the files matching the pattern, their sizes and mtimes, and
 * whether some process holds them open for writing); this FileProbe answers the task
 * reconciler from those reports.
 *
 * Per (folder, pattern) the newest report wins, whichever node sent it: on a shared
 * file system every node sees the same folder and the newest look is the best one. A
 * report that could not read the folder (missing, no permission) loses to any report
 * that could, however old: a node-local folder exists only where the application runs,
 * and the other nodes' "missing" must not hide it. mtimes are on the controller's clock
 * already (AgentNodeSource shifts them).
 */
import { matchesGlob, posix } from "node:path";
import type { FolderReport } from "../../api/agent-push.ts";
import type { FileInfo, FileProbe } from "../../agent/file-probe.ts";
import type { FolderReportSource, ReceivedFolderReport } from "./agent-nodes.ts";

type Index = {
  /** The winning report per folder, then per pattern. */
  byFolder: Map<string, Map<string, FolderReport>>;
  openForWriting: ReadonlySet<string>;
};

export class AgentFileProbe implements FileProbe {
  readonly #source: FolderReportSource;
  #index: Index | undefined;
  #version = -1;

  constructor(source: FolderReportSource) {
    this.#source = source;
  }

  /**
   * A folder no agent has reported yet lists as []: the trigger then simply waits. Nothing
   * is lost, because the agent starts watching it with the reply to its next push, and a
   * fileIn trigger takes every matching file newer than the task whenever it first sees it.
   */
  list(folder: string, pattern: string): FileInfo[] {
    const report = this.#indexNow().byFolder.get(normalize(folder))?.get(pattern);
    return report === undefined ? [] : report.files.map(infoOf);
  }

  /** From the reports of the file's folder whose pattern matches its name; undefined when none has it. */
  stat(path: string): FileInfo | undefined {
    const wanted = normalize(path);
    const name = posix.basename(wanted);
    const reports = this.#indexNow().byFolder.get(posix.dirname(wanted));
    if (reports === undefined) return undefined;
    for (const [pattern, report] of reports) {
      if (!matchesGlob(name, pattern)) continue;
      const file = report.files.find((f) => normalize(f.path) === wanted);
      if (file !== undefined) return infoOf(file);
    }
    return undefined;
  }

  openForWriting(): ReadonlySet<string> {
    return this.#indexNow().openForWriting;
  }

  /** Rebuilt when the agents' reports changed since the last call (pushes come once a second; the reconciler may ask more often). */
  #indexNow(): Index {
    const version = this.#source.foldersVersion;
    if (this.#index !== undefined && this.#version === version) return this.#index;
    const best = new Map<string, ReceivedFolderReport>();
    for (const received of this.#source.folderReports()) {
      const key = `${normalize(received.report.folder)}\0${received.report.pattern}`;
      const held = best.get(key);
      if (held === undefined || better(received, held)) best.set(key, received);
    }
    const byFolder = new Map<string, Map<string, FolderReport>>();
    const open = new Set<string>();
    for (const { report } of best.values()) {
      const folder = normalize(report.folder);
      let patterns = byFolder.get(folder);
      if (patterns === undefined) byFolder.set(folder, (patterns = new Map<string, FolderReport>()));
      patterns.set(report.pattern, report);
      for (const f of report.files) {
        if (!f.openForWriting) continue;
        // As listed (fileIn compares list() paths) and normalized (fileUpdated compares the task's path).
        open.add(f.path);
        open.add(normalize(f.path));
      }
    }
    this.#index = { byFolder, openForWriting: open };
    this.#version = version;
    return this.#index;
  }
}

/** A report that read the folder beats one that could not; otherwise the newer one wins. */
function better(a: ReceivedFolderReport, b: ReceivedFolderReport): boolean {
  const aRead = a.report.error === undefined;
  const bRead = b.report.error === undefined;
  if (aRead !== bRead) return aRead;
  return a.receivedAt > b.receivedAt;
}

function infoOf(f: FolderReport["files"][number]): FileInfo {
  return { path: f.path, mtimeMs: f.mtimeMs, size: f.size };
}

/** "/data/out/" and "/data//out" are the folder "/data/out" (the task's path and the agent's echo of it may differ so). */
function normalize(path: string): string {
  const p = posix.normalize(path);
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}
