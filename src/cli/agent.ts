/**
 * `odop agent`: the node agent. Samples this node every interval and pushes the samples
 * to the controller (`odop run --listen` or `odop controller`); optionally serves the
 * freezer API that pauses the Kubernetes backend's stage pods. Flags win over the
 * environment; every problem is reported at once, naming the flag, and exits 2.
 */
import pino from "pino";
import pkg from "../../package.json" with { type: "json" };
import { parseDuration } from "../api/duration.ts";
import { parseAgentOptions, runAgent, type AgentOptionsInput } from "../agent/agent.ts";

export type AgentFlags = {
  controller?: string;
  tokenFile?: string;
  caFile?: string;
  node?: string;
  interval: string;
  buffer?: string;
  mainSlurmJob?: string;
  mainPidFile?: string;
  mainCommand?: string;
  mainCgroup?: string;
  mainKubernetesPods?: boolean;
  freezerListen?: string;
  freezerTlsCert?: string;
  freezerTlsKey?: string;
  gpu?: string;
};

/** Where each option comes from, for messages. */
const SOURCES: Record<string, string> = {
  controller: "--controller (ODOP_CONTROLLER_URL)",
  token: "--token-file (ODOP_AGENT_TOKEN_FILE) or ODOP_AGENT_TOKEN",
  tokenFile: "--token-file (ODOP_AGENT_TOKEN_FILE)",
  controllerCaFile: "--ca-file",
  node: "--node (ODOP_NODE_NAME)",
  intervalMs: "--interval",
  bufferSamples: "--buffer",
  "main.slurmJob": "--main-slurm-job",
  "main.pidFile": "--main-pid-file",
  "main.command": "--main-command",
  "main.cgroup": "--main-cgroup",
  "freezer.listen": "--freezer-listen (ODOP_FREEZER_LISTEN)",
  "freezer.tlsCertFile": "--freezer-tls-cert and --freezer-tls-key",
  gpu: "--gpu",
};

/** The agent's options from flags and environment; problems name the flag. */
export function agentOptionsFrom(flags: AgentFlags, env: Readonly<Record<string, string | undefined>>): { options?: AgentOptionsInput; problems: string[] } {
  const problems: string[] = [];
  const intervalMs = parseDuration(flags.interval);
  if (intervalMs === undefined) problems.push(`--interval: "${flags.interval}" is not a duration, e.g. 1s or 500ms`);
  const number = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n)) problems.push(`${flag}: "${value}" is not a whole number`);
    return n;
  };
  const tokenFile = flags.tokenFile ?? env["ODOP_AGENT_TOKEN_FILE"];
  const token = tokenFile === undefined ? env["ODOP_AGENT_TOKEN"] : undefined;
  const slurmJob = number("--main-slurm-job", flags.mainSlurmJob);
  const main = {
    ...(slurmJob === undefined ? {} : { slurmJob }),
    ...(flags.mainPidFile === undefined ? {} : { pidFile: flags.mainPidFile }),
    ...(flags.mainCommand === undefined ? {} : { command: flags.mainCommand }),
    ...(flags.mainCgroup === undefined ? {} : { cgroup: flags.mainCgroup }),
    ...(flags.mainKubernetesPods === true ? { kubernetesPods: true } : {}),
  };
  const freezerListen = flags.freezerListen ?? env["ODOP_FREEZER_LISTEN"];
  const buffer = number("--buffer", flags.buffer);
  const node = flags.node ?? env["ODOP_NODE_NAME"];
  const input = {
    controller: flags.controller ?? env["ODOP_CONTROLLER_URL"],
    ...(token === undefined ? {} : { token }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
    ...(flags.caFile === undefined ? {} : { controllerCaFile: flags.caFile }),
    ...(node === undefined ? {} : { node }),
    ...(intervalMs === undefined ? {} : { intervalMs }),
    ...(buffer === undefined ? {} : { bufferSamples: buffer }),
    ...(Object.keys(main).length === 0 ? {} : { main }),
    ...(flags.gpu === undefined ? {} : { gpu: flags.gpu }),
    ...(freezerListen === undefined
      ? {}
      : {
          freezer: {
            listen: freezerListen,
            ...(flags.freezerTlsCert === undefined ? {} : { tlsCertFile: flags.freezerTlsCert }),
            ...(flags.freezerTlsKey === undefined ? {} : { tlsKeyFile: flags.freezerTlsKey }),
          },
        }),
  };
  const parsed = parseAgentOptions(input);
  if (!parsed.ok) {
    for (const line of parsed.problems) {
      const colon = line.indexOf(": ");
      const key = line.slice(0, colon);
      problems.push(`${SOURCES[key] ?? key}: ${line.slice(colon + 2)}`);
    }
  }
  return problems.length > 0 ? { problems } : { options: input as AgentOptionsInput, problems };
}

/** Runs the agent until SIGTERM or SIGINT; 0 when it stopped cleanly, 2 for bad options. */
export async function agentCommand(flags: AgentFlags, err: NodeJS.WritableStream): Promise<number> {
  const { options, problems } = agentOptionsFrom(flags, process.env);
  if (options === undefined) {
    err.write(`odop agent: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}\n`).join("")}`);
    return 2;
  }
  const log = pino({ level: process.env["ODOP_LOG_LEVEL"] ?? "info", base: { component: "agent" } }, pino.destination(2));
  await runAgent(options, log, { version: pkg.version });
  log.flush();
  return 0;
}
