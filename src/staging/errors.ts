/**
 * The one error type of the staging module. Backends map `reason` to an execution
 * condition reason and `transient` to "retry the stage" versus "fail the execution".
 */

/**
 * Why staging failed:
 * - NotFound: a source (file, or HTTP 404/410) does not exist.
 * - OutsideWorkspace: a path would read or write outside the execution's workspace.
 * - InvalidLocation: a location that cannot be parsed, or names no file.
 * - Unsupported: a location this backend cannot serve yet (s3://).
 * - Http: the server answered with an error status.
 * - Network: the connection failed, timed out or was cut short.
 * - Io: a local file system operation failed.
 * - Cancelled: the caller aborted the stage.
 */
export const STAGING_ERROR_REASONS = [
  "NotFound",
  "OutsideWorkspace",
  "InvalidLocation",
  "Unsupported",
  "Http",
  "Network",
  "Io",
  "Cancelled",
] as const;
export type StagingErrorReason = (typeof STAGING_ERROR_REASONS)[number];

export type StagingErrorOptions = {
  /** True when the same operation may succeed if tried again (network errors, 5xx). */
  transient?: boolean;
  cause?: unknown;
};

export class StagingError extends Error {
  override readonly name = "StagingError";
  readonly reason: StagingErrorReason;
  /** True for network errors, timeouts and 5xx answers; false for everything a retry cannot fix. */
  readonly transient: boolean;

  constructor(reason: StagingErrorReason, message: string, options: StagingErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.transient = options.transient ?? false;
  }

  /** The same error with `context` in front of its message, e.g. "input 2 (https://…)". */
  within(context: string): StagingError {
    return new StagingError(this.reason, `${context}: ${this.message}`, { transient: this.transient, cause: this });
  }
}

/** Node's error code (ENOENT, EACCES…) of a file system error, if it has one. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const code = error.code;
  return typeof code === "string" ? code : undefined;
}

/** Wraps anything thrown by a local file operation; StagingErrors pass through unchanged. */
export function asIoError(error: unknown, what: string): StagingError {
  if (error instanceof StagingError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new StagingError("Io", `${what}: ${detail}`, { cause: error });
}

/** Anything thrown while staging, as a StagingError; an abort by `signal` is Cancelled. */
export function toStagingError(error: unknown, what: string, signal?: AbortSignal): StagingError {
  if (error instanceof StagingError) return error;
  if (signal?.aborted === true) return new StagingError("Cancelled", `${what}: cancelled`, { cause: error });
  return asIoError(error, what);
}
