import { mkdir, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { prepareWorkspace, resolveInWorkspace, workspaceLayout } from "../../src/staging/workspace.ts";
import { cleanupScratch, failure, scratchDir } from "./helpers.ts";

afterEach(cleanupScratch);

describe("workspaceLayout and prepareWorkspace", () => {
  it("names inputs/, outputs/ and logs/ and creates them, twice without complaint", async () => {
    const ws = join(await scratchDir(), "ws");
    const layout = workspaceLayout(ws);
    expect(layout).toEqual({ inputs: join(ws, "inputs"), outputs: join(ws, "outputs"), logs: join(ws, "logs") });
    await prepareWorkspace(ws);
    await prepareWorkspace(ws);
    for (const folder of Object.values(layout)) expect((await stat(folder)).isDirectory()).toBe(true);
  });
});

describe("resolveInWorkspace", () => {
  it("resolves relative paths, existing or not, inside the workspace", async () => {
    const ws = await scratchDir();
    await prepareWorkspace(ws);
    expect(await resolveInWorkspace(ws, "inputs/a.txt")).toBe(join(ws, "inputs", "a.txt"));
    expect(await resolveInWorkspace(ws, "new/deep/file")).toBe(join(ws, "new", "deep", "file"));
    expect(await resolveInWorkspace(ws, "./outputs/")).toBe(join(ws, "outputs"));
  });

  it.each(["/etc/passwd", "../x", "inputs/../../x", "a/..", "..", "a\\..\\b"])("refuses %j, naming it", async (path) => {
    const ws = await scratchDir();
    const error = await failure(resolveInWorkspace(ws, path));
    expect(error.reason).toBe("OutsideWorkspace");
    expect(error.transient).toBe(false);
    expect(error.message).toContain(JSON.stringify(path));
    expect(error.message).toContain("escapes the workspace");
  });

  it("refuses paths that leave through a symlink, existing target or not", async () => {
    const ws = await scratchDir();
    const outside = await scratchDir("odop-outside-");
    await symlink(outside, join(ws, "link"));
    await symlink(join(outside, "missing-dir"), join(ws, "dangling-dir-parent"));
    for (const path of ["link", "link/file", "link/new/deeper", "dangling-dir-parent", "dangling-dir-parent/x"]) {
      const error = await failure(resolveInWorkspace(ws, path));
      expect(error.reason).toBe("OutsideWorkspace");
      expect(error.message).toContain(`"${path}" escapes the workspace`);
      expect(error.message).toContain(`through a symlink to ${outside}`);
    }
  });

  it("allows symlinks that stay inside the workspace", async () => {
    const ws = await scratchDir();
    await prepareWorkspace(ws);
    await symlink(join(ws, "inputs"), join(ws, "in"));
    expect(await resolveInWorkspace(ws, "in/x")).toBe(join(ws, "in", "x"));
  });

  it("says when the workspace itself is missing", async () => {
    const ws = join(await scratchDir(), "nope");
    const error = await failure(resolveInWorkspace(ws, "a"));
    expect(error.message).toBe(`workspace ${ws} does not exist`);
  });

  it("treats a workspace reached through a symlink as itself", async () => {
    const real = await scratchDir();
    const parent = await scratchDir();
    await mkdir(join(real, "inputs"));
    await symlink(real, join(parent, "ws"));
    expect(await resolveInWorkspace(join(parent, "ws"), "inputs/a")).toBe(join(parent, "ws", "inputs", "a"));
  });
});
