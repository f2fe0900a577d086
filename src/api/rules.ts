/**
 * Cross-field rules, written once and enforced twice: by zod (in `odop validate`, the
 * embedded store and the controller) and by the API server, as CEL
 * `x-kubernetes-validations` in the generated CRDs. Each rule carries both forms; the
 * test suite evaluates the CEL form with a CEL interpreter on the same manifests as
 * the TypeScript form and fails when they disagree.
 */
import type { z } from "zod";

export type Rule<T> = {
  /** CEL over `self`, the value the rule is attached to. */
  readonly cel: string;
  /** What is wrong and how to fix it; shown by kubectl and by `odop validate`. */
  readonly message: string;
  /** Where the problem is reported, relative to `self`, e.g. ".min" (Kubernetes `fieldPath`). */
  readonly fieldPath?: string;
  /** The same predicate in TypeScript: true when the value is acceptable. */
  readonly holds: (self: T) => boolean;
};

/** One entry of a CRD's `x-kubernetes-validations`. */
export type CelValidation = { rule: string; message: string; fieldPath?: string };

const VALIDATIONS = "x-kubernetes-validations";

/**
 * Attaches rules to a schema: a zod refinement for each, and their CEL in the schema's
 * metadata. Refinements run even when a field of the value already failed, so that one
 * pass reports every problem; a rule that cannot be evaluated on such a value (it
 * throws) is left to the next pass.
 */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly Rule<z.output<S>>[]): S {
  let refined: z.ZodType = schema;
  for (const rule of rules) {
    refined = refined.refine((value) => evaluate(rule, value as z.output<S>), {
      message: rule.message,
      path: fieldPathToKeys(rule.fieldPath),
      when: () => true,
    });
  }
  const meta = schema.meta() ?? {};
  const previous = (meta[VALIDATIONS] as CelValidation[] | undefined) ?? [];
  const validations: CelValidation[] = rules.map((r) => ({
    rule: r.cel,
    message: r.message,
    ...(r.fieldPath === undefined ? {} : { fieldPath: r.fieldPath }),
  }));
  return refined.meta({ ...meta, [VALIDATIONS]: [...previous, ...validations] }) as S;
}

function evaluate<T>(rule: Rule<T>, value: T): boolean {
  try {
    return rule.holds(value);
  } catch {
    return true;
  }
}

/** ".a.b" → ["a", "b"]. */
export function fieldPathToKeys(fieldPath: string | undefined): string[] {
  return fieldPath === undefined ? [] : fieldPath.split(".").filter((k) => k !== "");
}

/** CEL: exactly one of the named optional fields of `self` is set. */
export function exactlyOneCel(fields: readonly string[]): string {
  return `[${fields.map((f) => `has(self.${f})`).join(", ")}].exists_one(x, x)`;
}

/** TypeScript twin of exactlyOneCel. */
export function exactlyOne(value: object, fields: readonly string[]): boolean {
  return fields.filter((f) => (value as Record<string, unknown>)[f] !== undefined).length === 1;
}

/** A CEL raw string literal holding `text` verbatim (for regular expressions). */
export function celString(text: string): string {
  if (text.includes("'")) throw new Error(`cannot quote ${text} as a CEL raw string`);
  return `r'${text}'`;
}
