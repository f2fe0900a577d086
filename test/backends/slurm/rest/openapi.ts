/**
 * Validates JSON against an operation of a slurmrestd OpenAPI document (openapi/*.json):
 * the requestBody schema or the 200 response schema. The document's components are
 * given to ajv as one schema, so "#/components/schemas/…" references resolve inside it;
 * OpenAPI 3.0 keywords ajv does not know (`deprecated`, `example`, formats such as
 * int32) are ignored, `nullable` is understood.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type SchemaObject } from "ajv";

export const OPENAPI_DIR = join(import.meta.dirname, "openapi");

/** The versions with a document here. */
export const DOCUMENTED = { "v0.0.38": "v0.0.38-slurm-22.05.json", "v0.0.42": "v0.0.42.json", "v0.0.44": "v0.0.44.json" } as const;
export type DocumentedVersion = keyof typeof DOCUMENTED;

type Operation = { requestBody?: { content?: Record<string, { schema?: unknown }> }; responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> };
type Document = { paths: Record<string, Record<string, Operation>>; components: unknown };

export type SpecValidator = {
  /** Problems of `data` as the operation's request body, [] when valid. */
  request(method: string, path: string, data: unknown): string[];
  /** Problems of `data` as the operation's 200 answer; undefined when the document gives that answer no schema. */
  response(method: string, path: string, data: unknown): string[] | undefined;
};

export function specValidator(version: DocumentedVersion): SpecValidator {
  const document = JSON.parse(readFileSync(join(OPENAPI_DIR, DOCUMENTED[version]), "utf8")) as Document;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const id = `slurm-${version}.json`;
  ajv.addSchema({ $id: id, components: document.components });

  function operation(method: string, path: string): Operation {
    // v0.0.38 keeps its prefix in `servers` ("/slurm/v0.0.38/"), later documents in each path.
    const op = (document.paths[`/slurm/${version}${path}`] ?? document.paths[path])?.[method.toLowerCase()];
    if (op === undefined) throw new Error(`${version}: no operation ${method} ${path} in ${DOCUMENTED[version]}`);
    return op;
  }

  function check(schema: unknown, data: unknown): string[] {
    const validate = ajv.compile(rebase(schema, id));
    return validate(data) ? [] : (validate.errors ?? []).map(describe);
  }

  return {
    request(method, path, data) {
      const schema = operation(method, path).requestBody?.content?.["application/json"]?.schema;
      if (schema === undefined) throw new Error(`${version}: ${method} ${path} has no JSON request body`);
      return check(schema, data);
    },
    response(method, path, data) {
      const schema = operation(method, path).responses?.["200"]?.content?.["application/json"]?.schema;
      return schema === undefined ? undefined : check(schema, data);
    },
  };
}

/** Points the operation's local references at the components schema added under `id`. */
function rebase(schema: unknown, id: string): SchemaObject {
  return JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', `"$ref":"${id}#/`)) as SchemaObject;
}

function describe(e: ErrorObject): string {
  return `${e.instancePath === "" ? "(root)" : e.instancePath} ${e.message ?? "invalid"} ${JSON.stringify(e.params)}`;
}
