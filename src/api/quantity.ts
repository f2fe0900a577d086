/**
 * Kubernetes resource quantities ("500m", "2", "1.5", "2Gi", "512M", "1e3"), parsed
 * exactly: the value is kept as a fraction of two bigints so that "0.1" + "0.2" and
 * "1Gi" vs "1073741824" compare without floating-point error.
 *
 * odop accepts only non-negative quantities: every field that takes one is a size or
 * an amount of a resource.
 */
import { z } from "zod";

/** An exact non-negative rational value: num / den, den > 0. */
export type QuantityValue = { readonly num: bigint; readonly den: bigint };

const BINARY = { Ki: 1n, Mi: 2n, Gi: 3n, Ti: 4n, Pi: 5n, Ei: 6n } as const;
const DECIMAL = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 } as const;

/**
 * The grammar, for strings. The same expression is the CRD's `pattern`, so the API
 * server and `odop validate` accept exactly the same strings. The exponent form is
 * limited to two digits: "1e99" is already far beyond any machine.
 */
export const QUANTITY_PATTERN =
  "^(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]{1,2}))?$";
const QUANTITY_RE = new RegExp(QUANTITY_PATTERN);

const pow = (base: bigint, exp: number): bigint => base ** BigInt(exp);

/** Parses a quantity written as a string or an integer; returns undefined when invalid. */
export function parseQuantity(input: string | number): QuantityValue | undefined {
  if (typeof input === "number") {
    if (!Number.isSafeInteger(input) || input < 0) return undefined;
    return { num: BigInt(input), den: 1n };
  }
  if (!QUANTITY_RE.test(input)) return undefined;
  const match = /^([0-9]*)(?:\.([0-9]*))?(.*)$/.exec(input);
  if (match === null) return undefined;
  const [, whole = "", fraction = "", suffix = ""] = match;
  let num = BigInt((whole + fraction) || "0");
  let den = pow(10n, fraction.length);
  if (suffix in BINARY) {
    num *= pow(1024n, Number(BINARY[suffix as keyof typeof BINARY]));
  } else if (suffix in DECIMAL) {
    const exp = DECIMAL[suffix as keyof typeof DECIMAL];
    if (exp >= 0) num *= pow(10n, exp);
    else den *= pow(10n, -exp);
  } else {
    const exp = Number(suffix.slice(1)); // "e3", "E-2", "e+1"
    if (exp >= 0) num *= pow(10n, exp);
    else den *= pow(10n, -exp);
  }
  return reduce(num, den);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function reduce(num: bigint, den: bigint): QuantityValue {
  const g = gcd(num, den);
  return g > 1n ? { num: num / g, den: den / g } : { num, den };
}

/** Negative when a < b, 0 when equal, positive when a > b. Exact. */
export function compareQuantities(a: QuantityValue, b: QuantityValue): number {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

/** The value rounded up to a whole number of thousandths (millicores). */
export function toMilli(q: QuantityValue): bigint {
  return ceilDiv(q.num * 1000n, q.den);
}

/** The value rounded up to a whole unit (bytes, cores). */
export function toUnits(q: QuantityValue): bigint {
  return ceilDiv(q.num, q.den);
}

/** Approximate value, for display and for arithmetic where exactness does not matter. */
export function toNumber(q: QuantityValue): number {
  return Number(q.num) / Number(q.den);
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/**
 * A non-negative quantity as it is written in a manifest: an integer or a string.
 * A YAML float such as `1.5` is refused, as the API server refuses it for an
 * int-or-string field: it must be written "1.5".
 */
export const Quantity = z
  .union([z.int().min(0, { error: "must not be negative" }), z.string().max(64)], {
    error: (issue) =>
      typeof issue.input === "number"
        ? `a fractional quantity must be quoted, e.g. "${String(issue.input)}"`
        : 'expected a quantity such as 2, "500m", "1.5", "2Gi" or "512M"',
  })
  .refine((v) => typeof v === "number" || parseQuantity(v) !== undefined, {
    error: (issue) =>
      `"${String(issue.input)}" is not a quantity; write a number with an optional suffix: ` +
      `m (milli), k, M, G, T (powers of 1000), Ki, Mi, Gi, Ti (powers of 1024), e.g. "500m", "2Gi"`,
  })
  .meta({ "x-odop-type": "quantity" });
export type Quantity = z.infer<typeof Quantity>;

/** Parses a value that the Quantity schema has already accepted. */
export function quantityValue(q: Quantity): QuantityValue {
  const v = parseQuantity(q);
  if (v === undefined) throw new Error(`invalid quantity ${JSON.stringify(q)}`);
  return v;
}
