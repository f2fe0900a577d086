/**
 * API server answers → store errors. The mapping follows the Kubernetes Status object
 * (`code`, `reason`, `message`, `details.causes`), which is what every error response
 * of the API server carries in its body:
 *
 * - 404                          → NotFoundError
 * - 409, reason AlreadyExists    → AlreadyExistsError
 * - 409 otherwise (Conflict)     → ConflictError (stale resourceVersion: read again, retry)
 * - 422 Invalid                  → InvalidError, one problem per `details.causes` entry
 * - any other HTTP status        → KubernetesApiError with that status and the server's message
 * - no HTTP answer (refused, reset, DNS, timeout) → KubernetesApiError with `transient: true`
 *
 * `transient` says "the same request may succeed later unchanged": network failures,
 * 429, 5xx and 410 Gone. 400/401/403 and the like are not.
 */
import { ApiException } from "@kubernetes/client-node";
import type { FieldPath, Problem } from "../api/validate.ts";
import { AlreadyExistsError, ConflictError, InvalidError, NotFoundError, StoreError } from "./errors.ts";

/** The parts of a metav1.Status that the mapping reads. */
export type KubernetesStatus = {
  code?: number;
  reason?: string;
  message?: string;
  details?: { causes?: { field?: string; message?: string; reason?: string }[] };
};

/** An API server error that has no more specific store error. */
export class KubernetesApiError extends StoreError {
  override name = "KubernetesApiError";
  /** HTTP status; undefined when no answer came (network error). */
  readonly status: number | undefined;
  /** Status.reason, e.g. "Forbidden", "TooManyRequests". */
  readonly reason: string | undefined;
  readonly transient: boolean;
  constructor(message: string, options: { status?: number | undefined; reason?: string | undefined; transient: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.reason = options.reason;
    this.transient = options.transient;
  }
}

/** Whether a store error may go away if the same request is sent again later. */
export function isTransient(error: unknown): boolean {
  return error instanceof KubernetesApiError && error.transient;
}

/**
 * Maps anything a client-node call threw to a store error. `what` names the object for
 * the message ("OpTask ns/a").
 */
export function toStoreError(error: unknown, what: string): StoreError {
  if (error instanceof StoreError) return error;
  if (error instanceof ApiException) {
    const code = (error as ApiException<unknown>).code;
    return fromStatus(code, parseStatus((error as ApiException<unknown>).body), what, error);
  }
  const statusCode = statusCodeOf(error);
  if (statusCode !== undefined) return fromStatus(statusCode, {}, what, error);
  const detail = networkDetail(error);
  return new KubernetesApiError(`${what}: API server not reachable: ${detail}`, { transient: true, cause: error });
}

/** Maps an HTTP status and the Status body the server sent with it. */
export function fromStatus(code: number, status: KubernetesStatus, what: string, cause?: unknown): StoreError {
  const message = status.message ?? `HTTP ${code}`;
  const reason = status.reason;
  if (code === 404) return new NotFoundError(`${what} not found: ${message}`);
  if (code === 409 && reason === "AlreadyExists") return new AlreadyExistsError(`${what} already exists: ${message}`);
  if (code === 409) return new ConflictError(`${what} was modified; read it again and retry: ${message}`);
  if (code === 422) return new InvalidError(what, problemsOf(status));
  const transient = code === 410 || code === 429 || code >= 500;
  return new KubernetesApiError(`${what}: ${message}`, { status: code, reason, transient, cause });
}

/** One problem per cause; a Status without causes becomes one problem about the whole object. */
export function problemsOf(status: KubernetesStatus): Problem[] {
  const causes = status.details?.causes ?? [];
  const problems = causes.map((c) => ({ path: parseFieldPath(c.field ?? ""), message: c.message ?? c.reason ?? "invalid" }));
  return problems.length > 0 ? problems : [{ path: [], message: status.message ?? "invalid" }];
}

/** "spec.run.env[2].name" → ["spec", "run", "env", 2, "name"]; the form the API server writes. */
export function parseFieldPath(field: string): FieldPath {
  const path: (string | number)[] = [];
  for (const part of field.split(".")) {
    if (part === "") continue;
    const match = /^([^[]*)((?:\[[^\]]*\])*)$/.exec(part);
    if (match === null) {
      path.push(part);
      continue;
    }
    if (match[1] !== undefined && match[1] !== "") path.push(match[1]);
    for (const index of (match[2] ?? "").matchAll(/\[([^\]]*)\]/g)) {
      const raw = index[1] ?? "";
      path.push(/^\d+$/.test(raw) ? Number(raw) : raw);
    }
  }
  return path;
}

/** The Status in an error body: client-node hands it over as text, an object, or nothing. */
export function parseStatus(body: unknown): KubernetesStatus {
  let value: unknown = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim() === "" ? {} : { message: body.trim().slice(0, 1024) };
    }
  }
  if (typeof value !== "object" || value === null) return {};
  const record = value as Record<string, unknown>;
  const status: KubernetesStatus = {};
  if (typeof record["code"] === "number") status.code = record["code"];
  if (typeof record["reason"] === "string") status.reason = record["reason"];
  if (typeof record["message"] === "string") status.message = record["message"];
  const details = record["details"];
  if (typeof details === "object" && details !== null) {
    const causes = (details as Record<string, unknown>)["causes"];
    if (Array.isArray(causes)) {
      status.details = {
        causes: causes
          .filter((c): c is Record<string, unknown> => typeof c === "object" && c !== null)
          .map((c) => ({
            ...(typeof c["field"] === "string" ? { field: c["field"] } : {}),
            ...(typeof c["message"] === "string" ? { message: c["message"] } : {}),
            ...(typeof c["reason"] === "string" ? { reason: c["reason"] } : {}),
          })),
      };
    }
  }
  return status;
}

/** `statusCode` as client-node's Watch sets it on a non-200 answer. */
export function statusCodeOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { statusCode?: unknown }).statusCode;
  return typeof code === "number" ? code : undefined;
}

function networkDetail(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (typeof cause === "object" && cause !== null) {
    const code = (cause as { code?: unknown }).code;
    const message = (cause as { message?: unknown }).message;
    if (typeof code === "string") return `${error.message} (${code})`;
    if (typeof message === "string") return `${error.message}: ${message}`;
  }
  return error.message;
}
