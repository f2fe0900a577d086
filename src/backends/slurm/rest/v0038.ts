/**
 * openapi/v0.0.38 (Slurm 22.05–23.11), the plugin Debian bookworm's slurmrestd 22.05
 * loads. Shapes from its openapi.json and from what src/plugins/openapi/v0.0.38 of
 * Slurm 22.05.8 writes, which differs from the document in places:
 *
 * - unset strings are null, not absent; errors[] entries carry `error_number`, or
 *   `error_code` (failed submit), or `errno` (failed node query);
 * - every refused call answers HTTP 500 with errors[] (an unknown job id is
 *   {error_number: 2017, source: "slurm_load_job"}); see reply.ts;
 * - `job_state` is one string: the base state, or the most telling flag instead
 *   (COMPLETING, STOPPED, …; see wire.ts); `exit_code` is the raw wait(2) status;
 * - node `state` is the base state in lower case, its flags in `state_flags`;
 * - the job option `required_nodes` is disabled; `nodelist` (sbatch -w) is accepted
 *   although the document does not list it;
 * - DELETE /job/{id} always signals the whole job (KILL_FULL_JOB): SIGSTOP stops the
 *   batch script too, which only waits for its steps.
 */
import { z } from "zod";
import { SLURM_ERRNO, SlurmApiError, SlurmUnreachableError } from "./errors.ts";
import { getParsed, lookupJob, submitJob } from "./calls.ts";
import type { SlurmTransport } from "./transport.ts";
import type { JobSubmission, Signal, SlurmApi, SlurmJob, SlurmNode } from "./types.ts";
import { checkSubmission, exitCodeOfWaitStatus, JobStateNames, NullableString, slurmJob, slurmNode } from "./wire.ts";

const VERSION = "v0.0.38";
const BASE = `/slurm/${VERSION}`;

export const PingsV0038 = z.object({
  meta: z.object({ Slurm: z.object({ release: z.string().nullish() }).nullish() }).nullish(),
  pings: z.array(z.object({ hostname: NullableString, ping: NullableString })).nullish(),
});

export const JobV0038 = z.object({
  job_id: z.int(),
  name: NullableString,
  comment: NullableString,
  job_state: z.string().transform((s) => [s]).pipe(JobStateNames),
  state_reason: NullableString,
  exit_code: z.int().nullish(),
  nodes: NullableString,
  start_time: z.number().nullish(),
  end_time: z.number().nullish(),
  user_name: NullableString,
});
export type JobV0038 = z.infer<typeof JobV0038>;

export const JobsV0038 = z.object({ jobs: z.array(JobV0038) });

export const NodeV0038 = z.object({
  name: z.string(),
  state: z.string(),
  state_flags: z.array(z.string()).nullish(),
  cpus: z.int(),
  alloc_cpus: z.int().nullish(),
  real_memory: z.int(),
  alloc_memory: z.int().nullish(),
  free_memory: z.number().nullish(),
  cpu_load: z.number().nullish(),
  partitions: z.array(z.string()).nullish(),
  reason: z.string().nullish(),
});
export type NodeV0038 = z.infer<typeof NodeV0038>;

export const NodesV0038 = z.object({ nodes: z.array(NodeV0038) });

/** The signal names the v0.0.38 document lists (slurmrestd also takes "SIGSTOP"). */
const SIGNAL_NAMES: Readonly<Record<Signal, string>> = { SIGSTOP: "STOP", SIGCONT: "CONT", SIGTERM: "TERM", SIGKILL: "KILL", SIGURG: "URG" };

/** The job/submit body for a submission. */
export function submitBodyV0038(job: JobSubmission): unknown {
  checkSubmission(job);
  return {
    script: job.script,
    job: {
      name: job.name,
      comment: job.comment,
      current_working_directory: job.workingDirectory,
      standard_output: job.standardOutput,
      ...(job.standardError === undefined ? {} : { standard_error: job.standardError }),
      environment: { ...job.environment },
      nodes: [1, 1],
      tasks: 1,
      cpus_per_task: job.cpusPerTask,
      ...(job.requiredNodes === undefined ? {} : { nodelist: job.requiredNodes }),
      ...(job.partition === undefined ? {} : { partition: job.partition }),
      ...(job.account === undefined ? {} : { account: job.account }),
      ...(job.qos === undefined ? {} : { qos: job.qos }),
      ...(job.memoryPerNodeMiB === undefined ? {} : { memory_per_node: job.memoryPerNodeMiB }),
      ...(job.timeLimitMinutes === undefined ? {} : { time_limit: job.timeLimitMinutes }),
    },
  };
}

export function jobOfV0038(j: JobV0038): SlurmJob {
  return slurmJob({
    jobId: j.job_id,
    name: j.name,
    comment: j.comment,
    state: j.job_state,
    stateReason: j.state_reason,
    exitCode: exitCodeOfWaitStatus(j.exit_code),
    nodes: j.nodes,
    startTime: j.start_time ?? undefined,
    endTime: j.end_time ?? undefined,
    userName: j.user_name,
  });
}

export function nodeOfV0038(n: NodeV0038): SlurmNode {
  return slurmNode({
    name: n.name,
    state: [n.state, ...(n.state_flags ?? [])],
    cpus: n.cpus,
    allocatedCpus: n.alloc_cpus ?? 0,
    realMemoryMiB: n.real_memory,
    allocatedMemoryMiB: n.alloc_memory ?? 0,
    freeMemoryMiB: n.free_memory ?? undefined,
    cpuLoad: n.cpu_load ?? undefined,
    partitions: n.partitions ?? [],
    reason: n.reason,
  });
}

export function v0038Api(transport: SlurmTransport): SlurmApi {
  async function kill(jobId: number, signal: Signal, what: "signal" | "cancel"): Promise<void> {
    try {
      await transport.request({ method: "DELETE", path: `${BASE}/job/${jobId}`, query: { signal: SIGNAL_NAMES[signal] } });
    } catch (error) {
      // 22.05 already treats ESLURM_ALREADY_DONE as success; an unknown job is no error to a cancel.
      if (what === "cancel" && error instanceof SlurmApiError && error.has(SLURM_ERRNO.invalidJobId)) return;
      throw error;
    }
  }

  return {
    version: VERSION,
    signalReaches: "job",
    async ping() {
      const path = `${BASE}/ping/`;
      const reply = await getParsed(transport, VERSION, path, PingsV0038);
      const pings = reply.pings ?? [];
      if (pings.length > 0 && !pings.some((p) => p.ping === "UP")) {
        throw new SlurmUnreachableError({ method: "GET", path }, `slurmctld not responding (${pings.map((p) => `${p.hostname} ${p.ping}`).join(", ")})`);
      }
      const release = reply.meta?.Slurm?.release;
      return release === null || release === undefined ? {} : { release };
    },
    submit: (job) => submitJob(transport, VERSION, `${BASE}/job/submit`, () => submitBodyV0038(job)),
    job: (jobId) => lookupJob(transport, VERSION, `${BASE}/job/${jobId}`, jobId, JobsV0038, jobOfV0038),
    async jobs() {
      return (await getParsed(transport, VERSION, `${BASE}/jobs/`, JobsV0038)).jobs.map(jobOfV0038);
    },
    signal: (jobId, signal) => kill(jobId, signal, "signal"),
    cancel: (jobId) => kill(jobId, "SIGKILL", "cancel"),
    async nodes() {
      return (await getParsed(transport, VERSION, `${BASE}/nodes/`, NodesV0038)).nodes.map(nodeOfV0038);
    },
  };
}
