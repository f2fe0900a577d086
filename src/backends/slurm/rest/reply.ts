/**
 * The part of a slurmrestd answer that every API version shares: HTTP status,
 * `errors[]` and `warnings[]`. `checkAnswer` turns an answer into the body to parse or
 * into one of the errors of errors.ts; `parseReply` validates the body with an adapter's
 * zod schema and names the first fields that do not match.
 */
import { z } from "zod";
import {
  describeSlurmErrors,
  isTransientSlurmErrno,
  SlurmApiError,
  SlurmReplyError,
  SlurmUnreachableError,
  type SlurmErrorEntry,
  type SlurmRequestRef,
} from "./errors.ts";

/**
 * One `errors[]` entry as any version writes it: v0.0.38 uses `error_number` from its
 * resp_error(), `error_code` on a failed submit and `errno` on a failed node query; every
 * string may be null there.
 */
const SlurmErrorWire = z.object({
  error: z.string().nullish(),
  error_number: z.number().nullish(),
  error_code: z.number().nullish(),
  errno: z.number().nullish(),
  description: z.string().nullish(),
  source: z.string().nullish(),
});

const SlurmWarningWire = z.object({
  description: z.string().nullish(),
  source: z.string().nullish(),
});

/** A reply's `warnings[]` entry: logged, never thrown. */
export type SlurmWarning = { description: string; source: string };

/** What the adapters get back from a request: the parsed body and its warnings. */
export type CheckedAnswer = { body: unknown; warnings: SlurmWarning[] };

/** The errors[] of a body, normalised; [] when there are none or the body is not an object. */
export function slurmErrorsOf(body: unknown): SlurmErrorEntry[] {
  const list = fieldOf(body, "errors");
  if (!Array.isArray(list)) return [];
  return list.map((raw): SlurmErrorEntry => {
    const parsed = SlurmErrorWire.safeParse(raw);
    if (!parsed.success) return { error: "", description: truncate(JSON.stringify(raw) ?? String(raw)), source: "" };
    const e = parsed.data;
    const errno = e.error_number ?? e.error_code ?? e.errno ?? undefined;
    return {
      error: e.error ?? "",
      ...(errno === undefined ? {} : { error_number: errno }),
      description: e.description ?? "",
      source: e.source ?? "",
    };
  });
}

export function slurmWarningsOf(body: unknown): SlurmWarning[] {
  const list = fieldOf(body, "warnings");
  if (!Array.isArray(list)) return [];
  return list.map((raw) => {
    const parsed = SlurmWarningWire.safeParse(raw);
    return parsed.success
      ? { description: parsed.data.description ?? "", source: parsed.data.source ?? "" }
      : { description: truncate(JSON.stringify(raw) ?? String(raw)), source: "" };
  });
}

/**
 * An HTTP answer → its body, or the error it stands for:
 *
 * | answer                                         | result                 |
 * | ---------------------------------------------- | ---------------------- |
 * | errors[] all communication errnos (any status) | SlurmUnreachableError  |
 * | errors[] otherwise (any status, 200 included)  | SlurmApiError          |
 * | 5xx, 408, 429 without errors[]                 | SlurmUnreachableError  |
 * | other non-2xx without errors[]                 | SlurmApiError          |
 * | 2xx whose body is not JSON                     | SlurmReplyError        |
 * | 2xx, empty body                                | {}                     |
 */
export function checkAnswer(request: SlurmRequestRef, status: number, text: string): CheckedAnswer {
  let body: unknown = undefined;
  let json = false;
  if (text.trim() === "") {
    body = {};
    json = true;
  } else {
    try {
      body = JSON.parse(text) as unknown;
      json = true;
    } catch {
      // not JSON: an error page from slurmrestd ("Authentication failure") or a proxy
    }
  }
  const errors = json ? slurmErrorsOf(body) : [];
  if (errors.length > 0) {
    const detail = describeSlurmErrors(errors);
    const numbers = errors.map((e) => e.error_number);
    if (numbers.every((n) => n !== undefined && isTransientSlurmErrno(n))) {
      throw new SlurmUnreachableError(request, `slurmctld not reachable: ${status} ${detail}`, status);
    }
    throw new SlurmApiError(request, status, errors, detail, body);
  }
  const ok = status >= 200 && status < 300;
  if (!ok) {
    const detail = textDetail(status, json ? "" : text);
    if (status >= 500 || status === 408 || status === 429) {
      throw new SlurmUnreachableError(request, `${status} ${detail}`, status);
    }
    throw new SlurmApiError(request, status, [], detail);
  }
  if (!json) throw new SlurmReplyError(request, versionOf(request.path), `not JSON: ${truncate(text)}`);
  return { body, warnings: slurmWarningsOf(body) };
}

/** Validates a checked body with `schema`; a mismatch names the field paths and what was expected. */
export function parseReply<S extends z.ZodType>(schema: S, body: unknown, request: SlurmRequestRef, version: string): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new SlurmReplyError(request, version, describeIssues(parsed.error.issues));
}

/**
 * The job id of a submit that slurmctld accepted but answered with an error code (e.g.
 * ESLURM_JOB_HELD: the job exists, held), which slurmrestd reports in errors[] next to
 * `job_id`; undefined for any other error. A failed submit never carries a job id.
 */
export function jobIdDespiteErrors(error: unknown): number | undefined {
  if (!(error instanceof SlurmApiError)) return undefined;
  const jobId = fieldOf(error.reply, "job_id");
  return typeof jobId === "number" && Number.isSafeInteger(jobId) && jobId > 0 ? jobId : undefined;
}

/** "jobs[0].job_state: Invalid input: expected array, received string"; at most three issues. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, 3).map((i) => `${pathText(i.path) || "(the whole reply)"}: ${i.message}`);
  const more = issues.length > 3 ? `; and ${issues.length - 3} more` : "";
  return shown.join("; ") + more;
}

function pathText(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else text += text === "" ? String(key) : `.${String(key)}`;
  }
  return text;
}

/** The API version a path names ("/slurm/v0.0.42/jobs/" → "v0.0.42"), for messages. */
export function versionOf(path: string): string {
  return /^\/slurm\/(v\d+\.\d+\.\d+)\//.exec(path)?.[1] ?? "(no version)";
}

function textDetail(status: number, text: string): string {
  const words = text.replace(/\s+/g, " ").trim();
  const hint = status === 401 || status === 403 ? " (check the Slurm user name and token)" : "";
  return `${words === "" ? httpStatusText(status) : truncate(words)}${hint}`;
}

function httpStatusText(status: number): string {
  const known: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };
  return known[status] ?? "HTTP error";
}

function fieldOf(body: unknown, key: string): unknown {
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>)[key] : undefined;
}

function truncate(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
