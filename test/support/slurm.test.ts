/**
 * Smoke test of the Slurm harness: two private clusters side by side, jobs through
 * sbatch and through slurmrestd running as the job user, a slurmrestd restart, and a
 * stop that leaves no daemon and no folder behind.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REST_VERSION, sharedDir, type SlurmCluster, startSlurm } from "./slurm.ts";

const run = promisify(execFile);
const CLI = join(import.meta.dirname, "..", "..", "src", "cli", "odop.ts");

type Job = { job_state: string; exit_code: number; user_name: string };

describe("Slurm harness", () => {
  let a: SlurmCluster;
  let b: SlurmCluster;

  beforeAll(async () => {
    // Two at once, as two test files in parallel workers would start them.
    [a, b] = await Promise.all([startSlurm(), startSlurm()]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  const rest = async (cluster: SlurmCluster, path: string, init: RequestInit = {}) => {
    const response = await fetch(`${cluster.restUrl}/slurm/${REST_VERSION}${path}`, {
      ...init,
      headers: { "X-SLURM-USER-NAME": cluster.user, "X-SLURM-USER-TOKEN": await cluster.token(60), "Content-Type": "application/json" },
    });
    return { status: response.status, body: (await response.json()) as { errors: unknown[]; job_id?: number; jobs?: Job[] } };
  };

  const finished = async (cluster: SlurmCluster, id: number): Promise<Job> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const job = (await rest(cluster, `/job/${String(id)}`)).body.jobs?.[0];
      if (job !== undefined && !["PENDING", "CONFIGURING", "RUNNING", "COMPLETING"].includes(job.job_state)) return job;
      if (Date.now() > deadline) throw new Error(`job ${String(id)} still ${job?.job_state ?? "unknown"} after 20 s\n${cluster.logs()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const submit = async (cluster: SlurmCluster, dir: string, name: string, script: string): Promise<number> => {
    const { status, body } = await rest(cluster, "/job/submit", {
      method: "POST",
      body: JSON.stringify({
        job: { name, current_working_directory: dir, standard_output: join(dir, `${name}.out`), environment: { PATH: "/usr/bin:/bin" }, nodes: 1, tasks: 1, cpus_per_task: 1 },
        script,
      }),
    });
    expect({ status, errors: body.errors }).toEqual({ status: 200, errors: [] });
    if (body.job_id === undefined) throw new Error("no job_id");
    return body.job_id;
  };

  it("runs two clusters side by side, each with its own node, ports and a job run by sbatch as the job user", async () => {
    expect(a.node).not.toBe(b.node);
    expect(a.restUrl).not.toBe(b.restUrl);
    await Promise.all(
      [a, b].map(async (cluster) => {
        const dir = await sharedDir(cluster, "sbatch");
        writeFileSync(join(dir, "job.sh"), "#!/bin/sh\nid -un > whoami\necho \"$SLURMD_NODENAME\" > node\n");
        // Not `sbatch --wait`: it polls with a growing interval (seconds).
        const { stdout } = await run("sbatch", ["--parsable", `--uid=${cluster.user}`, `--chdir=${dir}`, `--output=${join(dir, "out")}`, join(dir, "job.sh")], {
          env: { ...process.env, ...cluster.env },
        });
        expect(await finished(cluster, Number(stdout.trim()))).toMatchObject({ job_state: "COMPLETED", exit_code: 0 });
        expect(readFileSync(join(dir, "whoami"), "utf8")).toBe(`${cluster.user}\n`);
        expect(readFileSync(join(dir, "node"), "utf8")).toBe(`${cluster.node}\n`);
      }),
    );
  });

  it("runs a two-step job submitted through slurmrestd, and reports a failing one as FAILED", async () => {
    const dir = await sharedDir(a, "rest");
    const ok = await submit(a, dir, "two-steps", "#!/bin/sh\nsrun -n1 sh -c 'echo one >> steps'\nsrun -n1 sh -c 'echo two >> steps'\n");
    const failing = await submit(a, dir, "exit-3", "#!/bin/sh\nsrun -n1 sh -c 'exit 3'\nexit 3\n");
    expect(await finished(a, ok)).toMatchObject({ job_state: "COMPLETED", exit_code: 0, user_name: a.user });
    expect(readFileSync(join(dir, "steps"), "utf8")).toBe("one\ntwo\n");
    // v0.0.38 reports the raw wait status: exit 3 is 3 << 8.
    expect(await finished(a, failing)).toMatchObject({ job_state: "FAILED", exit_code: 3 << 8 });
  });

  it("lets the job user run the repository's node and read the odop CLI", async () => {
    const dir = await sharedDir(a, "repo");
    const check = `require('fs').accessSync(${JSON.stringify(CLI)}, require('fs').constants.R_OK); console.log(process.version)`;
    const id = await submit(a, dir, "repo", `#!/bin/sh\nsrun -n1 ${process.execPath} -e ${JSON.stringify(check)} > version\n`);
    const job = await finished(a, id);
    const out = readFileSync(join(dir, "repo.out"), "utf8");
    expect(job.job_state, `the job user ${a.user} cannot run ${process.execPath} or read ${CLI}:\n${out}`).toBe("COMPLETED");
    expect(readFileSync(join(dir, "version"), "utf8")).toBe(`${process.version}\n`);
  });

  it("restarts slurmrestd on the same port", async () => {
    await a.restartRest();
    expect(await rest(a, "/ping")).toMatchObject({ status: 200, body: { errors: [] } });
  });

  it("stops every daemon and removes its folder", async () => {
    for (const cluster of [a, b]) {
      const daemons = processesUsing(cluster.dir);
      // sh: the harness's watchdog (it kills job processes if the test process dies).
      expect(daemons.map((p) => p.name).sort()).toEqual(["munged", "sh", "slurmctld", "slurmd", "slurmrestd"]);
      await cluster.stop();
      expect(daemons.filter((p) => existsSync(`/proc/${String(p.pid)}`) && !zombie(p.pid))).toEqual([]);
      expect(existsSync(cluster.dir)).toBe(false);
      await cluster.stop(); // idempotent
    }
  });
});

/** Processes whose command line names `dir` (the daemons get their files from there). */
function processesUsing(dir: string): { pid: number; name: string }[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .flatMap((e) => {
      try {
        const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
        return argv.some((arg) => arg.includes(dir)) ? [{ pid: Number(e), name: (argv[0] ?? "").split("/").pop() ?? "" }] : [];
      } catch {
        return [];
      }
    });
}

function zombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${String(pid)}/status`, "utf8"));
  } catch {
    return true;
  }
}
