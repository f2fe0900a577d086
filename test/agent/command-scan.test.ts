import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { CommandScanner } from "../../src/agent/command-scan.ts";
import { isKernelThread, readCommandLine, readProcStat } from "../../src/agent/procfs.ts";
import { Children, until } from "./processes.ts";

const children = new Children();
afterEach(() => children.killAll());

/** A shell that exec()s, after a moment, into one whose command line holds `marker`. */
function lateExec(children: Children, marker: string): { pid: number } {
  const [head, tail] = [marker.slice(0, 8), marker.slice(8)];
  // The marker is split in the first command line, whole only in the exec'd one.
  // It execs a program that never forks (a forked shell child would carry the marker too).
  return children.spawn("sh", ["-c", `sleep 0.3; m=${head}; exec "${process.execPath}" -e "setTimeout(() => {}, 30000)" "\${m}${tail}"`]);
}

describe("CommandScanner", () => {
  it("finds a process in the first scan after it appears", async () => {
    const scanner = new CommandScanner();
    const marker = `odop-${randomUUID()}`;
    expect(scanner.find(marker)).toEqual([]);
    // A program that never forks: a forked shell child would carry the marker until it execs.
    const child = children.spawn(process.execPath, ["-e", "setTimeout(() => {}, 30_000)", marker]);
    await until(() => readCommandLine(child.pid)?.includes(marker) === true, "the exec");
    expect(scanner.find(marker)).toEqual([child.pid]);
    expect(scanner.find(marker)).toEqual([child.pid]);
    await children.killAll();
    expect(scanner.find(marker)).toEqual([]);
  });

  it("reads a young process again, so a fork that execs later is found at once", async () => {
    const scanner = new CommandScanner({ fullScanEvery: 1000, youngScans: 3 });
    const marker = `odop-${randomUUID()}`;
    const child = lateExec(children, marker);
    expect(scanner.find(marker)).toEqual([]);
    await until(() => readCommandLine(child.pid)?.includes(marker) === true, "the late exec");
    expect(scanner.find(marker)).toEqual([child.pid]);
  });

  it("finds a process that execs late at the next full scan", async () => {
    const scanner = new CommandScanner({ fullScanEvery: 3, youngScans: 0 });
    const marker = `odop-${randomUUID()}`;
    const child = lateExec(children, marker);
    expect(scanner.find(marker)).toEqual([]); // scan 0: full
    await until(() => readCommandLine(child.pid)?.includes(marker) === true, "the late exec");
    expect(scanner.find(marker)).toEqual([]); // scans 1 and 2 keep the verdict
    expect(scanner.find(marker)).toEqual([]);
    expect(scanner.find(marker)).toEqual([child.pid]); // scan 3: full
  });

  it("starts over when the pattern changes, and refuses an invalid one", async () => {
    const scanner = new CommandScanner({ fullScanEvery: 1000 });
    const marker = `odop-${randomUUID()}`;
    // A program that never forks: a forked shell child would carry the marker until it execs.
    const child = children.spawn(process.execPath, ["-e", "setTimeout(() => {}, 30_000)", marker]);
    await until(() => readCommandLine(child.pid)?.includes(marker) === true, "the exec");
    expect(scanner.find(`${marker}-other`)).toEqual([]);
    expect(scanner.find(marker)).toEqual([child.pid]);
    expect(() => scanner.find("(unclosed")).toThrow(SyntaxError);
  });
});

describe("kernel threads", () => {
  it("are told apart from processes", () => {
    expect(isKernelThread(process.pid)).toBe(false);
    if (readProcStat(2)?.comm === "kthreadd") {
      expect(isKernelThread(2)).toBe(true);
      expect(readCommandLine(2)).toBe("");
    }
  });
});
