import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { batchScript, shellWord } from "../../../src/backends/slurm/script.ts";

const NASTY = [
  "plain",
  "",
  "with space",
  "it's",
  "'",
  "''",
  '"double" quotes',
  "$(touch /tmp/odop-pwned)",
  "`touch /tmp/odop-pwned`",
  "${HOME}",
  "$HOME",
  "a;b",
  "a && b",
  "a | b",
  "new\nline",
  "tab\there",
  "back\\slash",
  "glob*?[a]",
  "~",
  "-n",
  "--help",
  "é ünïcödé 🚀",
  "!!",
  "#comment",
  "a\rb",
];

describe("shellWord", () => {
  it("is read back by bash as exactly the value, for hostile values", () => {
    const words = NASTY.map(shellWord).join(" ");
    // printf '%s\0' prints each argument NUL-terminated: bash must hand over each value unchanged.
    const out = execFileSync("bash", ["-c", `printf '%s\\0' ${words}`]);
    expect(out.toString("utf8").split("\0").slice(0, -1)).toEqual(NASTY);
  });

  it("leaves simple words bare and refuses NUL bytes", () => {
    expect(shellWord("/usr/bin/node")).toBe("/usr/bin/node");
    expect(shellWord("a b")).toBe("'a b'");
    expect(() => shellWord("a\0b")).toThrow(/NUL byte/);
  });
});

describe("batchScript", () => {
  const dir = mkdtempSync(join(tmpdir(), "odop-script-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const script = (argv: string[]) =>
    batchScript({
      execution: "default/it's-$(bad)",
      attempt: 2,
      stateDir: join(dir, "state dir"),
      cpusPerTask: 3,
      stages: [
        { stage: "configure", argv: ["odop", "stage", "/spec one.json"], cwd: "/ws", stdout: "/ws/logs/configure-2.out", stderr: "/ws/logs/configure-2.err" },
        { stage: "run", argv, cwd: "/ws/sub dir", stdout: "/ws/logs/run-2.out", stderr: "/ws/logs/run-2.err" },
      ],
    });

  it("runs each stage as an srun step with the stage's words, in order, stopping at the first failure", () => {
    // A fake srun on PATH prints its arguments and fails for the run stage.
    const bin = join(dir, "bin");
    execFileSync("mkdir", ["-p", bin, join(dir, "state dir")]);
    writeFileSync(join(bin, "srun"), '#!/bin/bash\nprintf "%s\\0" "$@" >> "$SRUN_LOG"; printf "\\n" >> "$SRUN_LOG"\n[[ "$1" == --job-name=run ]] && exit 7\nexit 0\n');
    chmodSync(join(bin, "srun"), 0o755);
    const file = join(dir, "job.sh");
    writeFileSync(file, script(["bash", "/ws/run.sh", ...NASTY]));
    const log = join(dir, "srun.log");
    let code = 0;
    try {
      execFileSync("bash", [file], { env: { PATH: `${bin}:/usr/bin:/bin`, SRUN_LOG: log } });
    } catch (error) {
      code = (error as { status: number }).status;
    }
    expect(code).toBe(7);
    const calls = readFileSync(log, "utf8").split("\0\n").filter((l) => l !== "").map((l) => l.split("\0"));
    expect(calls).toHaveLength(2);
    expect(calls[0]).toEqual([
      "--job-name=configure", "--nodes=1", "--ntasks=1", "--cpus-per-task=3", "--cpu-bind=cores", "--chdir=/ws",
      "--output=/ws/logs/configure-2.out", "--error=/ws/logs/configure-2.err", "--open-mode=append", "--", "odop", "stage", "/spec one.json",
    ]);
    expect(calls[1]?.slice(5, 6)).toEqual(["--chdir=/ws/sub dir"]);
    expect(calls[1]?.slice(10)).toEqual(["bash", "/ws/run.sh", ...NASTY]);
    expect(readFileSync(join(dir, "state dir", "configure.exit"), "utf8")).toBe("0\n");
    expect(readFileSync(join(dir, "state dir", "run.exit"), "utf8")).toBe("7\n");
    expect(readFileSync(join(dir, "state dir", "run.started"), "utf8")).toMatch(/^\d+\.\d+\n$/);
  });

  it("refuses nonsense", () => {
    expect(() => batchScript({ execution: "a/b", attempt: 1, stateDir: "/s", cpusPerTask: 0, stages: [] })).toThrow(/cpusPerTask/);
    expect(() => batchScript({ execution: "a/b", attempt: 1, stateDir: "/s", cpusPerTask: 1, stages: [] })).toThrow(/at least one stage/);
  });
});
