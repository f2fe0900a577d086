/**
 * `odop run --backend slurm` as people run it: the real command in a child process,
 * against a real single-node Slurm (test/support/slurm.ts), with a token in SLURM_JWT.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type SlurmCluster, sharedDir } from "../support/slurm.ts";
import { slurmForFile } from "../support/slurm-suite.ts";

const ROOT = join(import.meta.dirname, "../..");
const ODOP = join(ROOT, "src/cli/odop.ts");

let cluster: SlurmCluster;
slurmForFile((c) => (cluster = c));

/** odop as the controller's user would run it; umask 0 because here the controller is root and jobs run as another user. */
function odop(args: string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("bash", ["-c", 'umask 0; exec "$@"', "odop", process.execPath, ODOP, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("odop run --backend slurm", () => {
  it("runs the executions of a task as Slurm jobs next to a main application, then shows them and the node", async () => {
    const dir = await sharedDir(cluster, "cli");
    mkdirSync(join(dir, "tasks"));
    writeFileSync(
      join(dir, "tasks", "hello.yaml"),
      `apiVersion: odop.io/v1alpha1
kind: OpTask
metadata: {name: hello}
spec:
  trigger: {manual: {}}
  backend: slurm
  run:
    script: |
      echo "hello from Slurm job $SLURM_JOB_ID" > ${dir}/hello.txt
  requirements: {cpu: {min: 1, max: 1}, time: 2m}
---
apiVersion: odop.io/v1alpha1
kind: OpExecution
metadata: {name: hello-1}
spec: {taskRef: {name: hello}, executionId: 0b6f1a52-6c1e-4e0b-9b7e-2f6f3c1d9a10, trigger: {reason: Manual}, action: Run}
`,
    );
    const env = { ODOP_PATH: join(dir, "home"), SLURM_JWT: await cluster.token(600) };
    const run = odop(["run", join(dir, "tasks"), "--backend", "slurm", "--slurmrestd", cluster.restUrl, "--slurm-user", cluster.user, "--interval", "250ms", "--", "sleep", "2"], env);
    expect({ code: run.code, stderr: run.stderr, stdout: run.stdout }).toMatchObject({ code: 0, stderr: "" });
    // SLURM_JWT is in odop's environment: it must not reach the job (srun there would authenticate with it, and it is a credential).
    expect(run.stdout).toMatch(/hello-1 Succeeded .*all stages succeeded/);
    expect(readFileSync(join(dir, "hello.txt"), "utf8")).toMatch(/^hello from Slurm job \d+\n$/);

    const describe = odop(["describe", "hello-1", "--run", "tasks"], env);
    expect(describe.stdout).toMatch(/Slurm job: +\d+/);
    const nodes = odop(["get", "nodes", "--run", "tasks"], env);
    expect(nodes.stdout).toMatch(new RegExp(`${cluster.node} +slurm +${cluster.cpus} `));
  });

  it("stops with exit code 2 and the flag to fix when slurmrestd is not given", async () => {
    const dir = await sharedDir(cluster, "cli-bad");
    mkdirSync(join(dir, "tasks"));
    writeFileSync(join(dir, "tasks", "t.yaml"), "apiVersion: odop.io/v1alpha1\nkind: OpTask\nmetadata: {name: t}\nspec: {trigger: {manual: {}}, backend: slurm, run: {script: 'true'}}\n");
    const run = odop(["run", join(dir, "tasks"), "--backend", "slurm"], { ODOP_PATH: join(dir, "home"), SLURM_JWT: "x" });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--slurmrestd (ODOP_SLURMRESTD): slurmrestd's address is needed for --backend slurm");
  });
});
