/**
 * `odop controller` as a process, on this machine where no API server exists: bad
 * configuration stops it at once; pointed at an unreachable API server it stays alive,
 * not ready, and stops cleanly on SIGTERM. Against a real cluster it runs in the e2e lane.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { eventually } from "../support/engine.ts";
import { freePort } from "../support/ports.ts";

const ROOT = join(import.meta.dirname, "../..");
const ODOP = join(ROOT, "src/cli/odop.ts");


/** A kubeconfig naming a port where nothing listens (a free port, released at once). */
function unreachableKubeconfig(port = 1199): string {
  const dir = mkdtempSync(join(tmpdir(), "odop-kubeconfig-"));
  const file = join(dir, "config");
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: none, user: {token: nothing}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`,
  );
  return file;
}

describe("odop controller", () => {
  it("refuses bad configuration with every problem, exit 2", () => {
    const r = spawnSync(process.execPath, [ODOP, "controller", "--workers", "0"], {
      env: { ...process.env, ODOP_LEADER_ELECTION: "maybe", KUBECONFIG: unreachableKubeconfig() },
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      'odop controller: ODOP_LEADER_ELECTION="maybe": ODOP_LEADER_ELECTION / --leader-election is true or false\nodop controller: --workers="0": workers is at least 1\n',
    );
  });

  it("stays alive but not ready while the API server cannot be reached, and stops on SIGTERM", async () => {
    const port = await freePort();
    const apiPort = await freePort();
    const child = spawn(process.execPath, [ODOP, "controller", "--leader-election", "false", "--http-port", String(port)], {
      env: { ...process.env, KUBECONFIG: unreachableKubeconfig(apiPort), ODOP_PATH: mkdtempSync(join(tmpdir(), "odop-state-")), ODOP_LOG_LEVEL: "silent" },
      stdio: "ignore",
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const get = async (path: string) => {
        const r = await fetch(`http://127.0.0.1:${port}${path}`);
        return r.status;
      };
      await eventually(async () => ((await get("/healthz").catch(() => 0)) === 200 ? true : undefined), "/healthz");
      expect(await get("/readyz")).toBe(503);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^odop_leader 1$/m);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
