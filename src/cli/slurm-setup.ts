/**
 * `--backend slurm`: the flags (and environment) that reach slurmrestd, validated once,
 * and the parts they make — the client, the Slurm backend, the node source.
 *
 * Flags win over the environment: --slurmrestd (ODOP_SLURMRESTD), --slurm-user
 * (ODOP_SLURM_USER, else the current user), one of --slurm-token-file
 * (ODOP_SLURM_TOKEN_FILE), --slurm-jwt-key (ODOP_SLURM_JWT_KEY) or the token in SLURM_JWT
 * (what `scontrol token` prints), --slurm-api (ODOP_SLURM_API, default auto),
 * --slurm-partition, --slurm-account, --slurm-qos.
 */
import { userInfo } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { SlurmBackend } from "../backends/slurm/backend.ts";
import { SlurmNodeSource } from "../backends/slurm/nodes.ts";
import { createSlurmApi, type SlurmClient } from "../backends/slurm/rest/client.ts";
import { clientOptionsOf, SlurmClientConfig } from "../backends/slurm/rest/config.ts";
import { type StagePlanner, stagesOf } from "../controller/stage-plans.ts";

export type SlurmFlags = {
  slurmrestd?: string;
  slurmUser?: string;
  slurmTokenFile?: string;
  slurmJwtKey?: string;
  slurmApi?: string;
  slurmPartition?: string;
  slurmAccount?: string;
  slurmQos?: string;
};

/** Where each setting comes from, for messages. */
const SOURCES: Record<string, string> = {
  endpoint: "--slurmrestd (ODOP_SLURMRESTD)",
  version: "--slurm-api (ODOP_SLURM_API)",
  "auth.user": "--slurm-user (ODOP_SLURM_USER)",
  "auth.token": "SLURM_JWT",
  "auth.tokenFile": "--slurm-token-file (ODOP_SLURM_TOKEN_FILE)",
  "auth.jwtKeyFile": "--slurm-jwt-key (ODOP_SLURM_JWT_KEY)",
  auth: "--slurm-token-file, --slurm-jwt-key or SLURM_JWT",
};

/** The client's settings from flags and environment; throws an Error with one line per problem, naming the flag. */
export function slurmClientConfig(flags: SlurmFlags, env: Readonly<Record<string, string | undefined>>): SlurmClientConfig {
  const tokenFile = flags.slurmTokenFile ?? env["ODOP_SLURM_TOKEN_FILE"];
  const jwtKeyFile = flags.slurmJwtKey ?? env["ODOP_SLURM_JWT_KEY"];
  const token = tokenFile === undefined && jwtKeyFile === undefined ? env["SLURM_JWT"] : undefined;
  const endpoint = flags.slurmrestd ?? env["ODOP_SLURMRESTD"];
  const input = {
    endpoint: endpoint ?? "",
    version: flags.slurmApi ?? env["ODOP_SLURM_API"] ?? "auto",
    auth: {
      user: flags.slurmUser ?? env["ODOP_SLURM_USER"] ?? userInfo().username,
      ...(token === undefined ? {} : { token }),
      ...(tokenFile === undefined ? {} : { tokenFile }),
      ...(jwtKeyFile === undefined ? {} : { jwtKeyFile }),
    },
  };
  const parsed = SlurmClientConfig.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    if (path === "endpoint" && endpoint === undefined) return `${SOURCES["endpoint"]}: slurmrestd's address is needed for --backend slurm, e.g. http://slurm-head:6820 or unix:/run/slurmrestd.sock`;
    return `${SOURCES[path] ?? path}: ${issue.message}`;
  });
  throw new Error(`cannot reach Slurm:\n  ${lines.join("\n  ")}`);
}

export type SlurmParts = { api: SlurmClient; backend: SlurmBackend; nodes: SlurmNodeSource };

export async function slurmParts(flags: SlurmFlags, env: Readonly<Record<string, string | undefined>>, deps: { log: Logger; executionsRoot: string; planner: StagePlanner }): Promise<SlurmParts> {
  const config = slurmClientConfig(flags, env);
  const log = deps.log.child({ component: "slurm" });
  const api = await createSlurmApi({ ...clientOptionsOf(config), log });
  const backend = new SlurmBackend({
    api,
    log,
    stateDir: (execution) => {
      const [namespace = "default", name = ""] = execution.split("/");
      return join(deps.executionsRoot, namespace, name, "state");
    },
    planStages: (first) => stagesOf(first.task).map((stage) => (stage === first.stage ? first : deps.planner.plan(stage, first.task, first.opExecution, first.attempt, first.cores))),
    ...(flags.slurmPartition === undefined ? {} : { partition: flags.slurmPartition }),
    ...(flags.slurmAccount === undefined ? {} : { account: flags.slurmAccount }),
    ...(flags.slurmQos === undefined ? {} : { qos: flags.slurmQos }),
  });
  const nodes = new SlurmNodeSource(api, { log, ...(flags.slurmPartition === undefined ? {} : { partition: flags.slurmPartition }) });
  return { api, backend, nodes };
}
