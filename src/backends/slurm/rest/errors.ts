/**
 * What a slurmrestd call can throw. Three kinds, told apart by class and by `transient`:
 *
 * - SlurmUnreachableError (transient): no usable answer. The connection failed
 *   (ECONNREFUSED, ECONNRESET, ENOENT on the socket, …), the request timed out, the
 *   answer was a 5xx (or 408/429) without Slurm errors, or Slurm's own errors all say
 *   that slurmctld could not be reached. The controller retries with backoff.
 * - SlurmApiError (terminal): slurmrestd or slurmctld refused the request: any 4xx, or
 *   any answer whose `errors[]` is not empty. Slurm 22.05 answers HTTP 500 to every
 *   call that slurmctld refused (an invalid node name on submit, an unknown job id on
 *   GET), so a 5xx that carries Slurm errors is terminal too, unless they are all
 *   communication errors (see TRANSIENT_SLURM_ERRORS).
 * - SlurmReplyError (terminal): a 2xx answer that is not what the API version documents.
 *
 * Messages quote Slurm's own words and never carry a token.
 */

/** One entry of a reply's `errors[]`, normalised over the API versions. */
export type SlurmErrorEntry = {
  /** Slurm's short text for the error number (slurm_strerror), e.g. "Invalid job id specified". */
  error: string;
  /** Slurm's errno, e.g. 2017 (ESLURM_INVALID_JOB_ID); undefined when the entry has none. */
  error_number?: number;
  /** The long form, e.g. "Unable to find JobId=42". */
  description: string;
  /** Where Slurm detected it, e.g. "slurm_load_job". */
  source: string;
};

/** Slurm errno values the adapters look at. */
export const SLURM_ERRNO = {
  /** ESLURM_INVALID_JOB_ID: slurmctld does not know the job (any more). */
  invalidJobId: 2017,
  /** ESLURM_ALREADY_DONE: the job has already ended. */
  alreadyDone: 2021,
} as const;

/**
 * Slurm errno values that mean "slurmctld (or slurmdbd) could not be reached", not "no":
 * SLURM_COMMUNICATIONS_* (1001–1004, 1019–1025), SLURMCTLD_COMMUNICATIONS_* (1800–1805),
 * ESLURM_IN_STANDBY_MODE (2027), ESLURM_IN_STANDBY_USE_BACKUP (2131), the socket
 * errors 5000–5005, ESLURM_DB_CONNECTION (7000), plain EAGAIN, ECONNRESET, ETIMEDOUT
 * and ECONNREFUSED, and SLURM_ERROR (−1, "Unspecified error"): in 22.05 that is what
 * slurm_load_job(s)/slurm_load_node return when slurmctld did not answer (a refusal
 * from slurmctld comes with its own errno, e.g. 2017).
 */
export function isTransientSlurmErrno(errno: number): boolean {
  return (
    errno === -1 ||
    (errno >= 1001 && errno <= 1004) ||
    (errno >= 1019 && errno <= 1025) ||
    (errno >= 1800 && errno <= 1805) ||
    errno === 2027 ||
    errno === 2131 ||
    (errno >= 5000 && errno <= 5005) ||
    errno === 7000 ||
    errno === 11 ||
    errno === 104 ||
    errno === 110 ||
    errno === 111
  );
}

/** Where a request went, for messages: "slurmrestd POST /slurm/v0.0.38/job/submit". */
export type SlurmRequestRef = { method: string; path: string };

/** slurmrestd or slurmctld said no. Retrying the same request will not help. */
export class SlurmApiError extends Error {
  override name = "SlurmApiError";
  readonly transient = false;
  readonly method: string;
  readonly path: string;
  /** HTTP status of the answer. */
  readonly status: number;
  readonly errors: readonly SlurmErrorEntry[];
  /** The answer's JSON body, when there was one (not enumerable: it stays out of logs). */
  declare readonly reply: unknown;
  constructor(request: SlurmRequestRef, status: number, errors: readonly SlurmErrorEntry[], detail: string, reply?: unknown) {
    super(`slurmrestd ${request.method} ${request.path}: ${status} ${detail}`);
    this.method = request.method;
    this.path = request.path;
    this.status = status;
    this.errors = errors;
    Object.defineProperty(this, "reply", { value: reply, enumerable: false });
  }

  /** Whether Slurm reported this errno (see SLURM_ERRNO). */
  has(errno: number): boolean {
    return this.errors.some((e) => e.error_number === errno);
  }
}

/** No usable answer from slurmrestd or slurmctld; the same request may succeed later. */
export class SlurmUnreachableError extends Error {
  override name = "SlurmUnreachableError";
  readonly transient = true;
  readonly reason = "SlurmUnreachable";
  readonly method: string;
  readonly path: string;
  /** HTTP status when an answer came (5xx, 408, 429, or Slurm communication errors); undefined otherwise. */
  readonly status: number | undefined;
  constructor(request: SlurmRequestRef, detail: string, status?: number, cause?: unknown) {
    super(`slurmrestd ${request.method} ${request.path}: ${detail}`, cause === undefined ? undefined : { cause });
    this.method = request.method;
    this.path = request.path;
    this.status = status;
  }
}

/** A 2xx answer that does not match the API version's shapes (or is not JSON). */
export class SlurmReplyError extends Error {
  override name = "SlurmReplyError";
  readonly transient = false;
  readonly method: string;
  readonly path: string;
  readonly version: string;
  constructor(request: SlurmRequestRef, version: string, detail: string) {
    super(`slurmrestd ${request.method} ${request.path}: the reply does not match openapi ${version}: ${detail}`);
    this.method = request.method;
    this.path = request.path;
    this.version = version;
  }
}

/** Whether an error is one the caller should retry with backoff. */
export function isTransientSlurmError(error: unknown): boolean {
  return error instanceof SlurmUnreachableError;
}

/** "Invalid job id specified: Unable to find JobId=42 (error 2017)"; several entries joined by "; ". */
export function describeSlurmErrors(entries: readonly SlurmErrorEntry[]): string {
  return entries
    .map((e) => {
      const words = [e.error, e.description].filter((w, i, all) => w !== "" && all.indexOf(w) === i);
      const text = words.length === 0 ? "unknown error" : words.join(": ");
      return e.error_number === undefined ? text : `${text} (error ${e.error_number})`;
    })
    .join("; ");
}
