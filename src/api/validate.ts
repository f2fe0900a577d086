/**
 * Validation of one decoded manifest against the odop.io API. Every problem names the
 * field (a path from the document's root) and says what is expected; unknown
 * apiVersions, kinds and fields are problems, never dropped.
 */
import type { z } from "zod";
import { kindDefinition, KINDS } from "./kinds.ts";
import { API_VERSION, GROUP, UNKNOWN_FIELD } from "./meta.ts";
import type { OpExecution } from "./opexecution.ts";
import type { OpNode } from "./opnode.ts";
import type { OpTask } from "./optask.ts";

export type FieldPath = readonly (string | number)[];
export type Problem = { path: FieldPath; message: string };

export type OdopObject = OpTask | OpExecution | OpNode;

export type ValidationResult =
  | { ok: true; object: OdopObject; problems: [] }
  | { ok: false; kind: string | undefined; name: string | undefined; problems: Problem[] };

const KIND_NAMES = KINDS.map((k) => k.kind).join(", ");

/** Validates a decoded manifest; on success returns it with defaults applied. */
export function validateObject(input: unknown): ValidationResult {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return failure(undefined, undefined, [{ path: [], message: "expected a Kubernetes object with apiVersion, kind, metadata and spec" }]);
  }
  const record = input as Record<string, unknown>;
  const { apiVersion, kind } = record;
  const name = nameOf(record);
  const kindName = typeof kind === "string" ? kind : undefined;
  if (typeof apiVersion !== "string") {
    return failure(kindName, name, [{ path: ["apiVersion"], message: `required: odop resources have apiVersion ${API_VERSION}` }]);
  }
  if (apiVersion !== API_VERSION) {
    const hint = apiVersion.startsWith(`${GROUP}/`)
      ? `this odop serves ${API_VERSION} only`
      : `not an odop resource; odop resources have apiVersion ${API_VERSION}`;
    return failure(kindName, name, [{ path: ["apiVersion"], message: `unknown apiVersion "${apiVersion}": ${hint}` }]);
  }
  const def = kindName === undefined ? undefined : kindDefinition(kindName);
  if (def === undefined) {
    const message =
      kindName === undefined ? `required: one of ${KIND_NAMES}` : `unknown kind "${kindName}" in ${API_VERSION}; expected one of ${KIND_NAMES}`;
    return failure(kindName, name, [{ path: ["kind"], message }]);
  }
  const result = def.schema.safeParse(input, { error: typeMessage });
  if (result.success) return { ok: true, object: result.data as OdopObject, problems: [] };
  return failure(kindName, name, problemsOf(result.error));
}

function failure(kind: string | undefined, name: string | undefined, problems: Problem[]): ValidationResult {
  return { ok: false, kind, name, problems };
}

function nameOf(record: Record<string, unknown>): string | undefined {
  const metadata = record["metadata"];
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const name = (metadata as Record<string, unknown>)["name"];
  return typeof name === "string" ? name : undefined;
}

/**
 * Clearer words for two common type errors: a missing field ("required", where zod
 * says "received undefined"), and a YAML scalar that parsed as a number or boolean
 * where a string is expected (`-19`, `yes`, `1.10`).
 */
function typeMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code !== "invalid_type") return undefined;
  if (issue.input === undefined) return `required: expected ${issue.expected}`;
  if (issue.expected === "string" && (typeof issue.input === "number" || typeof issue.input === "boolean")) {
    return `expected a string, got the ${typeof issue.input} ${String(issue.input)}; quote it in YAML: "${String(issue.input)}"`;
  }
  return undefined;
}

/** Flattens zod issues into problems, one per unknown key and one per union branch that failed alike. */
export function problemsOf(error: z.ZodError): Problem[] {
  const problems: Problem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const base = issue.message.startsWith(UNKNOWN_FIELD)
          ? `${UNKNOWN_FIELD} "${key}"${issue.message.slice(UNKNOWN_FIELD.length)}`
          : `${UNKNOWN_FIELD} "${key}"`;
        // kubectl's YAML (1.1) turns an unquoted key on/off/yes/no/y/n into a boolean.
        const message = key === "true" || key === "false" ? `${base} (YAML reads an unquoted on, off, yes, no, y or n key as ${key}: quote the key)` : base;
        problems.push({ path: [...issue.path.map(asKey), key], message });
      }
    } else {
      problems.push({ path: issue.path.map(asKey), message: issue.message });
    }
  }
  return problems;
}

function asKey(key: PropertyKey): string | number {
  return typeof key === "symbol" ? String(key) : key;
}

/** "spec.run.env[2].name" */
export function formatPath(path: FieldPath): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out === "" ? key : `.${key}`;
  return out === "" ? "(document)" : out;
}
