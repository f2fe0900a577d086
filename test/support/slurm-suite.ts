/** The Slurm harness for vitest suites (kept apart from slurm.ts, which benches import without vitest). */
import { afterAll, beforeAll } from "vitest";
import { type SlurmCluster, startSlurm } from "./slurm.ts";

/** One cluster for the calling test file: started before its tests, stopped after them; `use` receives it. */
export function slurmForFile(use: (cluster: SlurmCluster) => void): void {
  let cluster: SlurmCluster | undefined;
  beforeAll(async () => {
    cluster = await startSlurm();
    use(cluster);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });
}
