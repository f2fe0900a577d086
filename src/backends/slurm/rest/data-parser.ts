/**
 * The data_parser API versions (v0.0.40 and later), one module for all of them: they
 * agree on everything odop uses but a few points, listed in DataParserDialect.
 *
 * Shared shapes (v0.0.42 and v0.0.44 documents; v0.0.40/41 per the release notes):
 * `job.environment` is an array of "K=V"; time_limit, memory_per_node and times are
 * {set, infinite, number}; `job_state` and node `state` are arrays, base state first;
 * exit_code is {status[], return_code, signal: {id, name}}; `meta.slurm.release`.
 *
 * DELETE /job/{id}: without `flags`, slurmrestd signals the whole job (FULL_JOB); odop
 * signals only the steps (FULL_STEPS_ONLY, like scancel without --full) and cancels
 * with SIGKILL and the default. From 24.11 (v0.0.42) per-job results come in
 * `status[]` with HTTP 200 and no errors[]: ESLURM_ALREADY_DONE there is no error.
 */
import { z } from "zod";
import { describeSlurmErrors, SLURM_ERRNO, SlurmApiError, SlurmUnreachableError, type SlurmErrorEntry } from "./errors.ts";
import { getParsed, lookupJob, submitJob } from "./calls.ts";
import { parseReply } from "./reply.ts";
import type { SlurmTransport } from "./transport.ts";
import type { JobSubmission, Signal, SlurmApi, SlurmJob, SlurmNode } from "./types.ts";
import { checkSubmission, ExitCodeVerbose, exitCodeOfVerbose, JobStateNames, NoValNumber, numberOf, setNumber, slurmJob, slurmNode } from "./wire.ts";

export type DataParserVersion = "v0.0.40" | "v0.0.41" | "v0.0.42" | "v0.0.44";

/** Where the data_parser versions differ in what odop uses. */
export type DataParserDialect = {
  version: DataParserVersion;
  /**
   * Where the batch script goes: the request's top-level `script` (v0.0.40), or
   * `job.script` (v0.0.41 on, where the top-level field is deprecated).
   */
  script: "request" | "job";
};

export const PingsDataParser = z.object({
  meta: z.object({ slurm: z.object({ release: z.string().optional() }).optional() }).optional(),
  pings: z
    .array(
      z.object({
        hostname: z.string().default(""),
        /** v0.0.42 on; v0.0.40/41 only have `pinged`. */
        responding: z.boolean().optional(),
        pinged: z.string().optional(),
      }),
    )
    .default([]),
});

export const JobDataParser = z.object({
  job_id: z.int(),
  name: z.string().default(""),
  comment: z.string().default(""),
  job_state: JobStateNames,
  state_reason: z.string().default(""),
  exit_code: ExitCodeVerbose.optional(),
  nodes: z.string().default(""),
  start_time: NoValNumber.optional(),
  end_time: NoValNumber.optional(),
  user_name: z.string().default(""),
});
export type JobDataParser = z.infer<typeof JobDataParser>;

export const JobsDataParser = z.object({ jobs: z.array(JobDataParser) });

export const NodeDataParser = z.object({
  name: z.string(),
  state: z.array(z.string()),
  cpus: z.int(),
  alloc_cpus: z.int().default(0),
  real_memory: z.int(),
  alloc_memory: z.int().default(0),
  free_mem: NoValNumber.optional(),
  cpu_load: z.number().optional(),
  partitions: z.array(z.string()).default([]),
  reason: z.string().optional(),
});
export type NodeDataParser = z.infer<typeof NodeDataParser>;

export const NodesDataParser = z.object({ nodes: z.array(NodeDataParser) });

/** DELETE /job/{id}: per-job results (v0.0.42 on; absent before). */
export const KillReplyDataParser = z.object({
  status: z
    .array(
      z.object({
        error: z.object({ string: z.string().optional(), code: z.number().optional(), message: z.string().optional() }).optional(),
        job_id: NoValNumber.optional(),
      }),
    )
    .default([]),
});

/** The job/submit body for a submission. */
export function submitBodyDataParser(dialect: DataParserDialect, job: JobSubmission): unknown {
  checkSubmission(job);
  const desc = {
    ...(dialect.script === "job" ? { script: job.script } : {}),
    name: job.name,
    comment: job.comment,
    current_working_directory: job.workingDirectory,
    standard_output: job.standardOutput,
    ...(job.standardError === undefined ? {} : { standard_error: job.standardError }),
    environment: Object.entries(job.environment).map(([k, v]) => `${k}=${v}`),
    minimum_nodes: 1,
    maximum_nodes: 1,
    tasks: 1,
    cpus_per_task: job.cpusPerTask,
    ...(job.requiredNodes === undefined ? {} : { required_nodes: [job.requiredNodes] }),
    ...(job.partition === undefined ? {} : { partition: job.partition }),
    ...(job.account === undefined ? {} : { account: job.account }),
    ...(job.qos === undefined ? {} : { qos: job.qos }),
    ...(job.memoryPerNodeMiB === undefined ? {} : { memory_per_node: setNumber(job.memoryPerNodeMiB) }),
    ...(job.timeLimitMinutes === undefined ? {} : { time_limit: setNumber(job.timeLimitMinutes) }),
  };
  return dialect.script === "request" ? { script: job.script, job: desc } : { job: desc };
}

export function jobOfDataParser(j: JobDataParser): SlurmJob {
  return slurmJob({
    jobId: j.job_id,
    name: j.name,
    comment: j.comment,
    state: j.job_state,
    stateReason: j.state_reason,
    exitCode: exitCodeOfVerbose(j.exit_code),
    nodes: j.nodes,
    startTime: numberOf(j.start_time),
    endTime: numberOf(j.end_time),
    userName: j.user_name,
  });
}

export function nodeOfDataParser(n: NodeDataParser): SlurmNode {
  return slurmNode({
    name: n.name,
    state: n.state,
    cpus: n.cpus,
    allocatedCpus: n.alloc_cpus,
    realMemoryMiB: n.real_memory,
    allocatedMemoryMiB: n.alloc_memory,
    freeMemoryMiB: numberOf(n.free_mem),
    cpuLoad: n.cpu_load,
    partitions: n.partitions,
    reason: n.reason,
  });
}

export function dataParserApi(transport: SlurmTransport, dialect: DataParserDialect): SlurmApi {
  const { version } = dialect;
  const base = `/slurm/${version}`;

  async function kill(jobId: number, signal: Signal, what: "signal" | "cancel"): Promise<void> {
    const path = `${base}/job/${jobId}`;
    const query: Record<string, string> = what === "signal" ? { signal, flags: "FULL_STEPS_ONLY" } : { signal };
    const fine = (errno: number | undefined) => errno === SLURM_ERRNO.alreadyDone || (what === "cancel" && errno === SLURM_ERRNO.invalidJobId);
    let body: unknown;
    try {
      ({ body } = await transport.request({ method: "DELETE", path, query }));
    } catch (error) {
      if (error instanceof SlurmApiError && error.errors.length > 0 && error.errors.every((e) => fine(e.error_number))) return;
      throw error;
    }
    const ref = { method: "DELETE", path: `${path}?${new URLSearchParams(query).toString()}` };
    const failed: SlurmErrorEntry[] = parseReply(KillReplyDataParser, body, ref, version)
      .status.filter((s) => (s.error?.code ?? 0) !== 0 && !fine(s.error?.code))
      .map((s) => ({ error: s.error?.string ?? "", error_number: s.error?.code ?? 0, description: s.error?.message ?? "", source: "status" }));
    if (failed.length > 0) throw new SlurmApiError(ref, 200, failed, describeSlurmErrors(failed), body);
  }

  return {
    version,
    signalReaches: "steps",
    async ping() {
      const path = `${base}/ping/`;
      const reply = await getParsed(transport, version, path, PingsDataParser);
      const up = (p: (typeof reply.pings)[number]) => p.responding ?? p.pinged === "UP";
      if (reply.pings.length > 0 && !reply.pings.some(up)) {
        throw new SlurmUnreachableError({ method: "GET", path }, `slurmctld not responding (${reply.pings.map((p) => p.hostname).join(", ")})`);
      }
      const release = reply.meta?.slurm?.release;
      return release === undefined ? {} : { release };
    },
    submit: (job) => submitJob(transport, version, `${base}/job/submit`, () => submitBodyDataParser(dialect, job)),
    job: (jobId) => lookupJob(transport, version, `${base}/job/${jobId}`, jobId, JobsDataParser, jobOfDataParser),
    async jobs() {
      return (await getParsed(transport, version, `${base}/jobs/`, JobsDataParser)).jobs.map(jobOfDataParser);
    },
    signal: (jobId, signal) => kill(jobId, signal, "signal"),
    cancel: (jobId) => kill(jobId, "SIGKILL", "cancel"),
    async nodes() {
      return (await getParsed(transport, version, `${base}/nodes/`, NodesDataParser)).nodes.map(nodeOfDataParser);
    },
  };
}
