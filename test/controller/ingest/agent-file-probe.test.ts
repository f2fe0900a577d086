/** AgentFileProbe: file triggers answered from the folder reports agents push. */
import { describe, expect, it } from "vitest";
import type { FolderReport } from "../../../src/api/agent-push.ts";
import { AgentFileProbe } from "../../../src/controller/ingest/agent-file-probe.ts";
import type { FolderReportSource, ReceivedFolderReport } from "../../../src/controller/ingest/agent-nodes.ts";
import { AgentNodeSource } from "../../../src/controller/ingest/agent-nodes.ts";
import { pushOf } from "./pushes.ts";

class Reports implements FolderReportSource {
  list: ReceivedFolderReport[] = [];
  foldersVersion = 0;
  folderReports() {
    return this.list;
  }
  set(list: ReceivedFolderReport[]) {
    this.list = list;
    this.foldersVersion++;
  }
}

const file = (path: string, mtimeMs: number, openForWriting = false) => ({ path, size: 100, mtimeMs, openForWriting });
const report = (folder: string, pattern: string, files: FolderReport["files"], error?: string): FolderReport => ({ folder, pattern, files, ...(error === undefined ? {} : { error }) });

describe("AgentFileProbe", () => {
  it("lists a folder no agent reported yet as empty (the trigger waits)", () => {
    const probe = new AgentFileProbe(new Reports());
    expect(probe.list("/data/out", "*.h5")).toEqual([]);
    expect(probe.stat("/data/out/a.h5")).toBeUndefined();
    expect(probe.openForWriting().size).toBe(0);
  });

  it("answers list, stat and openForWriting from the newest report of each folder, whichever node sent it", () => {
    const reports = new Reports();
    const probe = new AgentFileProbe(reports);
    reports.set([
      { node: "n1", receivedAt: 1000, report: report("/data/out", "*.h5", [file("/data/out/a.h5", 10)]) },
      { node: "n2", receivedAt: 2000, report: report("/data/out/", "*.h5", [file("/data/out/a.h5", 10), file("/data/out/b.h5", 20, true)]) },
      { node: "n1", receivedAt: 1500, report: report("/logs", "*.log", [file("/logs/x.log", 5, true)]) },
    ]);
    expect(probe.list("/data/out", "*.h5")).toEqual([
      { path: "/data/out/a.h5", mtimeMs: 10, size: 100 },
      { path: "/data/out/b.h5", mtimeMs: 20, size: 100 },
    ]);
    expect(probe.list("/data//out/", "*.h5")).toHaveLength(2); // the same folder
    expect(probe.list("/data/out", "*.nc")).toEqual([]); // a pattern nobody watches
    expect(probe.stat("/data/out/b.h5")).toEqual({ path: "/data/out/b.h5", mtimeMs: 20, size: 100 });
    expect(probe.stat("/data/out/c.h5")).toBeUndefined();
    expect([...probe.openForWriting()].sort()).toEqual(["/data/out/b.h5", "/logs/x.log"]);

    // A newer report replaces the older one.
    reports.set([...reports.list, { node: "n1", receivedAt: 3000, report: report("/data/out", "*.h5", [file("/data/out/b.h5", 20)]) }]);
    expect(probe.list("/data/out", "*.h5").map((f) => f.path)).toEqual(["/data/out/b.h5"]);
    expect(probe.openForWriting().has("/data/out/b.h5")).toBe(false);
  });

  it("prefers a report that could read the folder over a newer one that could not (a node-local folder)", () => {
    const reports = new Reports();
    const probe = new AgentFileProbe(reports);
    reports.set([
      { node: "app-node", receivedAt: 1000, report: report("/scratch/run", "*", [file("/scratch/run/s1", 10)]) },
      { node: "other", receivedAt: 5000, report: report("/scratch/run", "*", [], "ENOENT: no such folder") },
    ]);
    expect(probe.list("/scratch/run", "*").map((f) => f.path)).toEqual(["/scratch/run/s1"]);
    reports.set([{ node: "other", receivedAt: 5000, report: report("/scratch/run", "*", [], "ENOENT: no such folder") }]);
    expect(probe.list("/scratch/run", "*")).toEqual([]);
  });

  it("finds a file for stat in a report of its folder whose pattern matches its name", () => {
    const reports = new Reports();
    const probe = new AgentFileProbe(reports);
    reports.set([
      { node: "n1", receivedAt: 1000, report: report("/data", "*.csv", [file("/data/t.csv", 7)]) },
      { node: "n1", receivedAt: 1000, report: report("/data", "state.json", [file("/data/state.json", 9)]) },
    ]);
    expect(probe.stat("/data/state.json")?.mtimeMs).toBe(9);
    expect(probe.stat("/data/t.csv")?.mtimeMs).toBe(7);
    expect(probe.stat("/data/other.json")).toBeUndefined();
  });

  it("reads AgentNodeSource's reports, with mtimes on the controller's clock; a replayed push does not roll them back", () => {
    const source = new AgentNodeSource({ watchFor: () => [] });
    const probe = new AgentFileProbe(source);
    const skew = 3600_000; // the agent's clock is an hour ahead
    const at = 1_800_000_000_000;
    const folders = (mtime: number) => [report("/data/out", "*.h5", [file("/data/out/a.h5", mtime + skew)])];
    source.take(pushOf({ seq: 0, sentAt: at + skew, samples: [], folders: folders(at - 500) }), at);
    expect(probe.list("/data/out", "*.h5")).toEqual([{ path: "/data/out/a.h5", mtimeMs: at - 500, size: 100 }]);
    source.take(pushOf({ seq: 0, sentAt: at + skew + 1000, samples: [], folders: folders(at + 700) }), at + 1000);
    expect(probe.list("/data/out", "*.h5")[0]?.mtimeMs).toBe(at + 700);
    // The first push again (its reply was lost), arriving late: older than what is held.
    source.take(pushOf({ seq: 0, sentAt: at + skew, samples: [], folders: folders(at - 500) }), at + 1200);
    expect(probe.list("/data/out", "*.h5")[0]?.mtimeMs).toBe(at + 700);
  });
});
