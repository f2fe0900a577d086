/**
 * The calls every adapter makes the same way, whatever its shapes: a GET validated with
 * zod, the submit, and the lookup of one job.
 */
import { z } from "zod";
import { SLURM_ERRNO, SlurmApiError } from "./errors.ts";
import { jobIdDespiteErrors, parseReply } from "./reply.ts";
import type { SlurmTransport } from "./transport.ts";
import type { SlurmJob, SubmitResult } from "./types.ts";

/** POST …/job/submit's answer, in every version. */
export const SubmitReply = z.object({ job_id: z.int() });

/** GET `path`, validated with `schema`. */
export async function getParsed<S extends z.ZodType>(transport: SlurmTransport, version: string, path: string, schema: S): Promise<z.output<S>> {
  const { body } = await transport.request({ method: "GET", path });
  return parseReply(schema, body, { method: "GET", path }, version);
}

/**
 * POST …/job/submit with the body `build` makes (a bad submission rejects, it does not
 * throw). Never retried (transport.ts). An answer that carries a job id along with
 * errors[] (slurmctld accepted the job with an error code, e.g. held) is a submitted
 * job: its id is returned and the errors logged.
 */
export async function submitJob(transport: SlurmTransport, version: string, path: string, build: () => unknown): Promise<SubmitResult> {
  const body = build();
  let answer: unknown;
  try {
    ({ body: answer } = await transport.request({ method: "POST", path, body }));
  } catch (error) {
    const jobId = jobIdDespiteErrors(error);
    if (jobId === undefined) throw error;
    transport.log.warn({ path, jobId, errors: (error as SlurmApiError).errors }, "slurmrestd submitted the job but reported errors");
    return { jobId };
  }
  return { jobId: parseReply(SubmitReply, answer, { method: "POST", path }, version).job_id };
}

/** GET …/job/{id}: the entry for `jobId`, or undefined when slurmctld does not know the job (errno 2017). */
export async function lookupJob<J extends { job_id: number }>(
  transport: SlurmTransport,
  version: string,
  path: string,
  jobId: number,
  schema: z.ZodType<{ jobs: J[] }>,
  toSlurmJob: (job: J) => SlurmJob,
): Promise<SlurmJob | undefined> {
  try {
    const found = (await getParsed(transport, version, path, schema)).jobs.find((j) => j.job_id === jobId);
    return found === undefined ? undefined : toSlurmJob(found);
  } catch (error) {
    if (error instanceof SlurmApiError && error.has(SLURM_ERRNO.invalidJobId)) return undefined;
    throw error;
  }
}
