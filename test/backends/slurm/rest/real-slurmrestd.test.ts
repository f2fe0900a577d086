/**
 * The client against a real slurmrestd (Slurm 22.05, openapi/v0.0.38, test/support/slurm.ts):
 * version discovery, each way of authenticating, Slurm's own refusals, and outages.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mintedToken, staticToken, tokenFile } from "../../../../src/backends/slurm/rest/auth.ts";
import { createSlurmApi, type SlurmClient } from "../../../../src/backends/slurm/rest/client.ts";
import { SlurmApiError, SlurmUnreachableError } from "../../../../src/backends/slurm/rest/errors.ts";
import { type SlurmCluster, sharedDir } from "../../../support/slurm.ts";
import { slurmForFile } from "../../../support/slurm-suite.ts";

let cluster: SlurmCluster;
const clients: SlurmClient[] = [];
slurmForFile((c) => (cluster = c));
afterAll(() => {
  for (const c of clients) c.close();
});

async function client(auth = mintedToken({ user: cluster.user, keyFile: cluster.jwtKeyPath })): Promise<SlurmClient> {
  const c = await createSlurmApi({ endpoint: cluster.restUrl, auth, version: "auto" });
  clients.push(c);
  return c;
}

describe("slurmrestd client on a real Slurm 22.05", () => {
  it("discovers openapi/v0.0.38 and reads the node, with a minted, a static and a file token", async () => {
    const dir = await sharedDir(cluster, "client");
    const file = join(dir, "token");
    writeFileSync(file, `${await cluster.token()}\n`);
    for (const auth of [mintedToken({ user: cluster.user, keyFile: cluster.jwtKeyPath }), staticToken(cluster.user, await cluster.token()), tokenFile(cluster.user, file)]) {
      const api = await client(auth);
      expect(api.version).toBe("v0.0.38");
      expect(await api.ping()).toMatchObject({ release: expect.stringMatching(/^22\.05/) });
      const nodes = await api.nodes();
      expect(nodes.map((n) => [n.name, n.cpus, n.partitions])).toEqual([[cluster.node, cluster.cpus, [cluster.partition]]]);
    }
  });

  it("passes Slurm's refusals on as terminal errors with Slurm's message, and knows an unknown job is gone", async () => {
    const api = await client();
    const dir = await sharedDir(cluster, "refused");
    const refused = await api
      .submit({ name: "x", comment: "c", script: "#!/bin/bash\ntrue\n", workingDirectory: dir, standardOutput: "/dev/null", environment: { PATH: "/usr/bin:/bin" }, requiredNodes: "no-such-node", cpusPerTask: 1 })
      .then(() => undefined, (error: unknown) => error);
    expect(refused).toBeInstanceOf(SlurmApiError);
    expect((refused as Error).message).toMatch(/invalid node name/i);
    expect(await api.job(987_654)).toBeUndefined();
    await expect(api.cancel(987_654)).resolves.toBeUndefined();
  });

  it("reports slurmrestd down as SlurmUnreachable (transient), and works again once it is back", async () => {
    const api = await client();
    await cluster.stopRest();
    try {
      const error = await api.jobs().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(SlurmUnreachableError);
      expect(error).toMatchObject({ transient: true, reason: "SlurmUnreachable" });
    } finally {
      await cluster.startRest();
    }
    expect(Array.isArray(await api.jobs())).toBe(true);
  });
});
