/** `odop validate` as a user runs it: the real command in a child process. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { task } from "../support/manifests.ts";

const ROOT = join(import.meta.dirname, "../..");
const ODOP = join(ROOT, "src/cli/odop.ts");

function odop(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [ODOP, ...args], { cwd: ROOT, input, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.trim().split("\n").filter(Boolean) };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "odop-validate-"));
}

describe("odop validate", () => {
  it("accepts every example", () => {
    const r = odop(["validate", "-f", "examples/"]);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^\d+ document\(s\) valid\n$/);
    expect(r.code).toBe(0);
  });

  const CPU_MIN_ABOVE_MAX = `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata:
  name: compress
spec:
  trigger:
    manual: {}
  run:
    command: [zstd, "-19"]
  requirements:
    cpu:
      min: 4
      max: 2
`;

  it("names the field when cpu min exceeds max, with file, document and line", () => {
    const file = join(tempDir(), "cpu.yaml");
    writeFileSync(file, CPU_MIN_ABOVE_MAX);
    const r = odop(["validate", "-f", file]);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([`${file}:12: doc 1 OpTask/compress: spec.requirements.cpu.min: min must not exceed max: lower min or raise max`]);
    expect(r.stderr).toBe("1 problem(s); 0 of 1 document(s) valid\n");
  });

  it("names an unknown trigger kind and lists the known ones", () => {
    const manifest = CPU_MIN_ABOVE_MAX.replace("manual: {}", "cronJob: {every: 5m}").replace("min: 4", "min: 1");
    const r = odop(["validate", "-f", "-"], `---\n${CPU_MIN_ABOVE_MAX}---\n${manifest}`);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      "-:13: doc 1 OpTask/compress: spec.requirements.cpu.min: min must not exceed max: lower min or raise max",
      '-:22: doc 2 OpTask/compress: spec.trigger.cronJob: unknown field "cronJob"; expected one of: fileIn, fileUpdated, schedule, after, manual, idle',
      "-:21: doc 2 OpTask/compress: spec.trigger: set exactly one trigger kind: fileIn, fileUpdated, schedule, after, manual, idle",
    ]);
  });

  it("reads folders recursively and counts documents of multi-document files", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "nested"));
    const good = stringify(task(() => {}));
    writeFileSync(join(dir, "two.yaml"), `${good}---\n${good}---\n`);
    writeFileSync(join(dir, "nested", "bad.yml"), stringify(task((s) => (s.backend = "kubernetes"))));
    writeFileSync(join(dir, "notes.txt"), "not a manifest");
    const r = odop(["validate", "-f", dir]);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([`${join(dir, "nested", "bad.yml")}:9: doc 1 OpTask/base: spec.run: a pod-backed task runs a container: set run.image`]);
    expect(r.stderr).toBe("1 problem(s); 2 of 3 document(s) valid\n");
  });

  it("reports YAML syntax errors at their line, and documents that are not odop resources", () => {
    const r = odop(["validate", "-f", "-"], "apiVersion: apps/v1\nkind: Deployment\n---\nkind: OpTask\nspec: [unclosed\n");
    expect(r.code).toBe(1);
    expect(r.lines[0]).toBe('-:1: doc 1 Deployment: apiVersion: unknown apiVersion "apps/v1": not an odop resource; odop resources have apiVersion odop.io/v1alpha1');
    expect(r.lines[1]).toMatch(/^-:\d+: doc 2: YAML: /);
  });

  it("reports a path that cannot be read", () => {
    const r = odop(["validate", "-f", "does-not-exist.yaml", "examples/compress-snapshots.yaml"]);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual(["does-not-exist.yaml: cannot read: ENOENT"]);
  });

  it("requires -f", () => {
    const r = odop(["validate"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/required option '-f, --filename <paths...>' not specified/);
  });
});

describe("odop crds", () => {
  it("prints all three CRDs as one stream", () => {
    const r = odop(["crds"]);
    expect(r.code).toBe(0);
    const names = [...r.stdout.matchAll(/^ {2}name: (\S+)$/gm)].map((m) => m[1]);
    expect(names).toEqual(["optasks.odop.io", "opexecutions.odop.io", "opnodes.odop.io"]);
  });
});
