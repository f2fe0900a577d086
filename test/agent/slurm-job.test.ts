/**
 * The agent's `--main-slurm-job` on a real Slurm (test/support/slurm.ts, proctrack/linuxproc:
 * no job cgroups, so the job's processes are found by SLURM_JOB_ID in their environment):
 * a job's busy step shows as the main application's load on the core it runs on.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { MainProcesses } from "../../src/agent/main-processes.ts";
import { Sampler } from "../../src/agent/sampler.ts";
import { eventually } from "../support/engine.ts";
import { type SlurmCluster, sharedDir } from "../support/slurm.ts";
import { slurmForFile } from "../support/slurm-suite.ts";

let cluster: SlurmCluster;
slurmForFile((c) => (cluster = c));

describe("agent: the main application is a Slurm job", () => {
  it("finds the processes of a running job and attributes their CPU to the main application", async () => {
    const dir = await sharedDir(cluster, "main-job");
    const env = { ...process.env, ...cluster.env };
    const jobId = Number(
      execFileSync("sbatch", ["--parsable", "-n1", "-c1", `--uid=${cluster.user}`, `--chdir=${dir}`, "--output=/dev/null", "--wrap", "srun -n1 bash -c 'while :; do :; done'"], { env })
        .toString()
        .trim(),
    );
    try {
      await eventually(() => (/JobState=RUNNING/.test(execFileSync("scontrol", ["show", "job", String(jobId)], { env }).toString()) ? true : undefined), "the job running");
      const main = new MainProcesses({ slurmJob: jobId });
      const other = new MainProcesses({ slurmJob: jobId + 1000 });
      const sampler = new Sampler({ node: cluster.node, main: main.main, odopRoots: main.odopRoots });
      const control = new Sampler({ node: cluster.node, main: other.main, odopRoots: other.odopRoots });
      await sampler.sample();
      await control.sample();
      const busy = await eventually(async () => {
        await new Promise((r) => setTimeout(r, 400));
        const s = await sampler.sample();
        return s.main.processes > 0 && s.main.cpu > 0.5 ? s : undefined;
      }, "the job's busy step counted as the main application");
      expect(busy.main.processes).toBeGreaterThanOrEqual(1);
      expect(Math.max(...busy.cores.map((c) => c.main))).toBeGreaterThan(0.5);
      // Another job id finds nothing.
      expect((await control.sample()).main).toMatchObject({ processes: 0, cpu: 0 });
    } finally {
      execFileSync("scancel", [String(jobId)], { env });
    }
  });
});
