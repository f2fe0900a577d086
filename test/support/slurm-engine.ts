/**
 * An embedded engine whose stages run as Slurm jobs on a real test cluster
 * (test/support/slurm.ts): real journalled store, the Slurm backend and node source made
 * by `odop run --backend slurm`'s own wiring (slurmParts), tokens minted from the
 * cluster's jwt key, real clock.
 *
 * The controller runs as root here and the jobs as the unprivileged job user; on a real
 * cluster both are the same person. So the engine's folder is one the job user can
 * write, and the test process's umask is 0 so that the folders the planner makes under
 * it are writable by the job user too.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pino from "pino";
import { StagePlanner } from "../../src/controller/stage-plans.ts";
import { type SlurmParts, slurmParts } from "../../src/cli/slurm-setup.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { ODOP_CLI, runEngine, type TestEngine } from "./engine.ts";
import { type SlurmCluster, sharedDir } from "./slurm.ts";

/** stop(false) leaves running jobs to Slurm (a crash); stop() stops them (Ctrl-C). */
export type SlurmTestEngine = TestEngine & { slurm: SlurmParts };

export async function startSlurmEngine(cluster: SlurmCluster, options: { root?: string; restUrl?: string } = {}): Promise<SlurmTestEngine> {
  process.umask(0);
  const root = options.root ?? (await sharedDir(cluster, `engine-${randomBytes(4).toString("hex")}`));
  const log = pino({ level: process.env["ODOP_TEST_LOG"] ?? "silent" });
  const store = new EmbeddedStore({ folder: join(root, "store") });
  const executionsRoot = join(root, "executions");
  const planner = new StagePlanner({
    executionsRoot,
    odopCommand: [process.execPath, ODOP_CLI],
    baseEnv: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: root, LANG: "C.UTF-8" },
    secretsDir: join(root, "secrets"),
    pythonPath: [],
  });
  const slurm = await slurmParts(
    { slurmrestd: options.restUrl ?? cluster.restUrl, slurmUser: cluster.user, slurmJwtKey: cluster.jwtKeyPath, slurmApi: "v0.0.38" },
    {},
    { log, executionsRoot, planner },
  );
  const onStop = () => {
    slurm.backend.close();
    slurm.api.close();
  };
  return { ...runEngine({ root, store, log, backend: slurm.backend, planner, nodes: slurm.nodes, onStop }), slurm };
}
