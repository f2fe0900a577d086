/**
 * Evaluates the CEL rules of a generated CRD the way the API server does, with a
 * conformance-tested CEL interpreter (@bufbuild/cel) and a twin of the Kubernetes
 * quantity library. Lets the tests check that the CRDs refuse what zod refuses.
 */
import { type CelInput, CelScalar, celFunc, celMethod, isCelError, run } from "@bufbuild/cel";
import { compareQuantities, parseQuantity } from "../../src/api/quantity.ts";

type Schema = { [key: string]: unknown };
export type Verdict = { path: (string | number)[]; rule: string; message: string; fieldPath?: string; ok: boolean };

/** CEL reserved words; Kubernetes exposes properties with these names as __name__. */
const RESERVED = new Set(
  "true false null in as break const continue else for function if import let loop package namespace return var void while".split(" "),
);

// Kubernetes' quantity(string) returns a Quantity with compareTo(); here a quantity is
// its string, and compareTo parses both sides exactly.
const quantityFuncs = [
  celFunc("quantity", [CelScalar.STRING], CelScalar.STRING, (s) => {
    if (parseQuantity(s) === undefined) throw new Error(`invalid quantity ${s}`);
    return s;
  }),
  celMethod("compareTo", CelScalar.STRING, [CelScalar.STRING], CelScalar.INT, function (other) {
    const [a, b] = [parseQuantity(this), parseQuantity(other)];
    if (a === undefined || b === undefined) throw new Error("invalid quantity");
    return BigInt(compareQuantities(a, b));
  }),
];

function escapeProperty(name: string): string {
  if (RESERVED.has(name)) return `__${name}__`;
  return name.replaceAll("__", "__underscores__").replaceAll(".", "__dot__").replaceAll("-", "__dash__").replaceAll("/", "__slash__");
}

/** JSON value → CEL value: integers become CEL ints, objects maps (properties escaped). */
export function toCel(value: unknown, schema: Schema | undefined): CelInput {
  if (typeof value === "number") return Number.isInteger(value) && schema?.["type"] !== "number" ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map((v) => toCel(v, schema?.["items"] as Schema | undefined));
  if (typeof value === "object" && value !== null) {
    const properties = schema?.["properties"] as Record<string, Schema> | undefined;
    const additional = schema?.["additionalProperties"] as Schema | undefined;
    return new Map(
      Object.entries(value).map(([k, v]) =>
        properties === undefined ? [k, toCel(v, additional)] : [escapeProperty(k), toCel(v, properties[k])],
      ),
    );
  }
  return value as CelInput;
}

export function evaluate(rule: string, self: unknown, schema: Schema): boolean {
  const result = run(rule, { self: toCel(self, schema) }, { funcs: quantityFuncs });
  if (isCelError(result)) throw new Error(`CEL ${rule}: ${result.message}`);
  if (typeof result !== "boolean") throw new Error(`CEL ${rule} returned a ${typeof result}, not a bool`);
  return result;
}

/** Every rule of the schema whose value is present in `value`, with its verdict. */
export function celVerdicts(schema: Schema, value: unknown, path: (string | number)[] = []): Verdict[] {
  if (value === undefined) return [];
  const out: Verdict[] = [];
  for (const v of (schema["x-kubernetes-validations"] as { rule: string; message: string; fieldPath?: string }[] | undefined) ?? []) {
    out.push({ path, ...v, ok: evaluate(v.rule, value, schema) });
  }
  const properties = schema["properties"] as Record<string, Schema> | undefined;
  if (properties !== undefined && typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(properties)) {
      out.push(...celVerdicts(child, (value as Record<string, unknown>)[key], [...path, key]));
    }
  }
  const items = schema["items"] as Schema | undefined;
  if (items !== undefined && Array.isArray(value)) {
    value.forEach((item, i) => out.push(...celVerdicts(items, item, [...path, i])));
  }
  return out;
}
