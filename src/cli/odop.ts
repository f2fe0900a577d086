#!/usr/bin/env node
/**
 * The `odop` command. Each subcommand lives in its own module; this file only wires them,
 * and loads a subcommand's module when it runs: `odop agent` and `odop stage` run
 * everywhere and often, and must not pay for the Kubernetes client they never use.
 */
import { text } from "node:stream/consumers";
import { Command, InvalidArgumentError } from "commander";
import pkg from "../../package.json" with { type: "json" };
import type { AgentFlags } from "./agent.ts";
import type { ControllerFlags } from "./controller-config.ts";
import type { InspectOptions } from "./inspect.ts";
import type { RunOptions } from "./run.ts";

const inspect$ = () => import("./inspect.ts");

const program = new Command("odop")
  .description("Run data operations opportunistically on the idle cores, memory and GPUs of HPC-adjacent clusters.")
  .version(pkg.version)
  .showHelpAfterError();

program
  .command("validate")
  .description("Check OpTask, OpExecution and OpNode manifests without a cluster (files, folders, or - for stdin).")
  .requiredOption("-f, --filename <paths...>", "files or folders of YAML/JSON manifests; - reads stdin")
  .option("-q, --quiet", "print problems only")
  .action(async (options: { filename: string[]; quiet?: boolean }) => {
    const { validatePaths } = await import("./validate.ts");
    const report = await validatePaths(options.filename, () => text(process.stdin));
    for (const line of report.lines) process.stdout.write(`${line}\n`);
    const valid = report.documents - report.invalid;
    if (report.lines.length > 0) {
      process.stderr.write(`${report.lines.length} problem(s); ${valid} of ${report.documents} document(s) valid\n`);
      process.exitCode = 1;
    } else if (options.quiet !== true) {
      process.stderr.write(`${report.documents} document(s) valid\n`);
    }
  });

program
  .command("crds")
  .description("Print the CustomResourceDefinitions (odop crds | kubectl apply -f -), or write them to a folder.")
  .option("-w, --write <folder>", "write one file per CRD into this folder")
  .action(async (options: { write?: string }) => {
    if (options.write === undefined) {
      process.stdout.write((await import("./crds.ts")).crdStream());
      return;
    }
    for (const path of await (await import("./crds.ts")).writeCrds(options.write)) process.stderr.write(`wrote ${path}\n`);
  });

program
  .command("run")
  .description("Harvest this machine's idle cores for the OpTasks in PATH while a main application runs (the embedded mode).")
  .argument("<path>", "file or folder of OpTask (and OpExecution) manifests")
  .argument("[command...]", "the main application to launch, after --")
  .option("--main-pid <pid>", "attach to a running main application instead of launching one", parsePid)
  .option("--run <name>", "name of the run (its state is in $ODOP_PATH/runs/<name>); default: PATH's base name")
  .option("--interval <duration>", "sampling and scheduling interval", "1s")
  .option("--hold <duration>", "how long a core must stay idle before odop uses it", "1s")
  .option("--idle-threshold <share>", "the main application's smoothed use of a core below which the core counts as idle", "0.5")
  .option("--busy-threshold <share>", "the main application's use of a core above which odop gives it back", "0.8")
  .option("--reclaim <raw|smoothed>", "give a core back on sustained use (smoothed) or on one busy sample (raw)", "smoothed")
  .option("--notify-key-file <file>", "HMAC key for signing notifications (or set ODOP_NOTIFY_KEY)")
  .option("--no-table", "print one line per phase change even on a terminal")
  .option("--backend <local|slurm>", "run stages as local processes, or as Slurm jobs through slurmrestd", "local")
  .option("--slurmrestd <url>", "slurmrestd's address, http://host:port or unix:/path (ODOP_SLURMRESTD)")
  .option("--slurm-user <name>", "Slurm user odop submits as (ODOP_SLURM_USER; default: you)")
  .option("--slurm-token-file <file>", "file holding a token from `scontrol token` (ODOP_SLURM_TOKEN_FILE; or the token in SLURM_JWT)")
  .option("--slurm-jwt-key <file>", "the cluster's jwt key: odop mints and renews its own tokens (ODOP_SLURM_JWT_KEY)")
  .option("--slurm-api <version>", "slurmrestd API version, e.g. v0.0.38, or auto (ODOP_SLURM_API)")
  .option("--slurm-partition <name>", "partition for odop's jobs (default: Slurm's)")
  .option("--slurm-account <name>", "account for odop's jobs")
  .option("--slurm-qos <name>", "QOS for odop's jobs")
  .option("--listen <host:port>", "take node agents' samples here instead of sampling this machine in-process (ODOP_LISTEN)")
  .option("--agent-token-file <file>", "the agents' bearer token, read on every push (ODOP_AGENT_TOKEN_FILE; or ODOP_AGENT_TOKEN)")
  .option("--stale-after <duration>", "an agent silent this long makes its node stale: no new placements", "10s")
  .option("--node-status-interval <duration>", "least time between two OpNode status writes of a node", "10s")
  .addHelpText(
    "after",
    "\nExamples:\n  odop run examples/local -- examples/local/simulation.sh\n  odop run tasks/ --main-pid $(pgrep -f cesm)\n  SLURM_JWT=$(scontrol token | cut -d= -f2) odop run tasks/ --backend slurm --slurmrestd http://slurm-head:6820\n\nExit code: 0 when no execution failed, 1 when one did, 2 for bad input, 130 when interrupted.",
  )
  .action(async (path: string, command: string[], options: RunOptions & { table: boolean }) => {
    const { table, ...rest } = options;
    const { runCommand } = await import("./run.ts");
    process.exitCode = await runCommand(path, command, table ? rest : { ...rest, table: false }, process.stdout, process.stderr);
  });

program
  .command("agent")
  .description("Sample this node every interval (per-core load, memory, I/O, GPUs, the main application) and push it to the controller.")
  .option("--controller <url>", "the controller's agent endpoint, e.g. http://head:8470 (ODOP_CONTROLLER_URL)")
  .option("--token-file <file>", "file holding the bearer token, read again when it changes (ODOP_AGENT_TOKEN_FILE; or the token in ODOP_AGENT_TOKEN)")
  .option("--ca-file <file>", "CA certificate of an https controller")
  .option("--node <name>", "node name in samples (ODOP_NODE_NAME; default SLURMD_NODENAME, else the host name)")
  .option("--interval <duration>", "sampling interval", "1s")
  .option("--buffer <samples>", "samples kept while the controller is unreachable (oldest dropped first)")
  .option("--main-slurm-job <id>", "the main application is this Slurm job's processes")
  .option("--main-pid-file <file>", "the main application is the process in this pid file, and its children")
  .option("--main-command <regex>", "the main application is the processes whose command line matches")
  .option("--main-cgroup <path>", "the main application is the processes of this cgroup v2")
  .option("--main-kubernetes-pods", "the main application is every pod container on this node that odop did not start")
  .option("--freezer-listen <host:port>", "serve the freezer API that pauses the Kubernetes backend's stage pods (ODOP_FREEZER_LISTEN)")
  .option("--freezer-tls-cert <file>", "TLS certificate for the freezer API")
  .option("--freezer-tls-key <file>", "TLS key for the freezer API")
  .option("--gpu <auto|off>", "sample NVIDIA GPUs through nvidia-smi when it is on PATH (auto)")
  .addHelpText("after", "\nExample:\n  ODOP_AGENT_TOKEN_FILE=/etc/odop/token odop agent --controller http://head:8470 --main-slurm-job $SLURM_JOB_ID")
  .action(async (flags: AgentFlags) => {
    const { agentCommand } = await import("./agent.ts");
    process.exitCode = await agentCommand(flags, process.stderr);
  });

program
  .command("controller")
  .description("Reconcile OpTasks and OpExecutions on a Kubernetes cluster, running stages as pods (deploy/ or the Helm chart start it).")
  .option("--namespace <ns>", "namespace of the controller and its Lease (ODOP_NAMESPACE)")
  .option("--watch-namespaces <list>", "namespace to watch; empty for all (ODOP_WATCH_NAMESPACES)")
  .option("--leader-election <bool>", "true: one acting replica through a Lease (ODOP_LEADER_ELECTION)")
  .option("--lease-name <name>", "the Lease's name (ODOP_LEASE_NAME)")
  .option("--workspace <kind>", "emptyDir or pvc (ODOP_WORKSPACE)")
  .option("--workspace-claim <name>", "the PVC stage pods mount when the workspace is pvc (ODOP_WORKSPACE_CLAIM)")
  .option("--http-port <port>", "serves /healthz, /readyz and /metrics (ODOP_HTTP_PORT)")
  .option("--ingest-port <port>", "node agents push samples here; default 0: no agents (ODOP_INGEST_PORT, e.g. 8470; token in ODOP_AGENT_TOKEN_FILE or ODOP_AGENT_TOKEN)")
  .option("--workers <n>", "reconciles at once (ODOP_WORKERS)")
  .option("--cleanup <policy>", "pods of ended executions: delete-on-success (default) or keep (ODOP_CLEANUP)")
  .action(async (flags: ControllerFlags) => {
    // Exit once it has stopped cleanly: retry timers of clients that were cut off must not keep it alive.
    const { controllerCommand } = await import("./controller.ts");
    process.exit(await controllerCommand(flags, process.stderr));
  });

const inspect = (cmd: Command) =>
  cmd.option("--run <name>", "the run (default: the only or most recent one)").option("-n, --namespace <ns>", "namespace of the object");

inspect(program.command("get"))
  .description("List executions, tasks, nodes, or all of a run.")
  .argument("[what]", "executions | tasks | nodes | all", "executions")
  .action(async (what: string, options: InspectOptions) => (await inspect$()).getCommand(what, options, process.stdout));

inspect(program.command("describe"))
  .description("Show an execution or a task in detail, with its conditions and events.")
  .argument("<name>")
  .action(async (name: string, options: InspectOptions) => (await inspect$()).describeCommand(name, options, process.stdout));

inspect(program.command("logs"))
  .description("Print a stage's output (stdout and stderr).")
  .argument("<execution>")
  .option("--stage <stage>", "configure | run | publish", "run")
  .option("--attempt <n>", "which attempt (default: the latest)", (v) => Number(v))
  .option("-f, --follow", "keep printing what the stage writes")
  .option("--cluster", "read the stage pod's log from the cluster KUBECONFIG names (odop controller), not from a local run")
  .action(async (name: string, options: InspectOptions & { stage: string; attempt?: number; follow?: boolean; cluster?: boolean }) => (await inspect$()).logsCommand(name, options, process.stdout));

for (const [verb, what] of [
  ["pause", "Pause an execution (SIGSTOP to its stage); it keeps its cores."],
  ["resume", "Resume a paused execution."],
  ["stop", "Stop an execution: its stage is stopped and it ends Cancelled."],
  ["skip", "Skip an execution: it does not run (or stops) and ends Skipped."],
] as const) {
  inspect(program.command(verb))
    .description(what)
    .argument("<execution>")
    .action(async (name: string, options: InspectOptions) => (await inspect$()).actionCommand(verb, name, options, process.stdout));
}

program
  .command("stage", { hidden: true })
  .description("Run a configure or publish stage from its spec file (started by backends, not by people).")
  .argument("<spec>", "the stage spec JSON file")
  .action(async (spec: string) => {
    const { runStageSpec } = await import("../staging/stage-spec.ts");
    process.exitCode = await runStageSpec(spec, { stdout: process.stdout, stderr: process.stderr });
  });

function parsePid(value: string): number {
  const pid = Number(value);
  if (!Number.isInteger(pid) || pid <= 0) throw new InvalidArgumentError("a process id is a positive integer");
  return pid;
}

try {
  await program.parseAsync();
} catch (error) {
  process.stderr.write(`odop: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
