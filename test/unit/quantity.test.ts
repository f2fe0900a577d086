import { describe, expect, it } from "vitest";
import { compareQuantities, parseQuantity, Quantity, toMilli, toNumber, toUnits } from "../../src/api/quantity.ts";

const exact = (text: string | number) => {
  const q = parseQuantity(text);
  if (q === undefined) throw new Error(`${text} did not parse`);
  return `${q.num}/${q.den}`;
};

describe("parseQuantity", () => {
  it.each([
    ["500m", "1/2"],
    ["2", "2/1"],
    [2, "2/1"],
    ["1.5", "3/2"],
    [".5", "1/2"],
    ["5.", "5/1"],
    ["2Gi", `${2 * 1024 ** 3}/1`],
    ["512M", "512000000/1"],
    ["1Ki", "1024/1"],
    ["1Ei", `${1024n ** 6n}/1`],
    ["1E", `${10n ** 18n}/1`],
    ["1e3", "1000/1"],
    ["1E3", "1000/1"],
    ["1.5e-3", "3/2000"],
    ["1e+2", "100/1"],
    ["250u", "1/4000"],
    ["7n", "7/1000000000"],
    ["0", "0/1"],
    ["0.1", "1/10"],
  ])("%s is exactly %s", (text, want) => {
    expect(exact(text)).toBe(want);
  });

  it.each(["", "-1", "+1", "1.5.2", "2gi", "2GB", "1e", "1e1.5", "1e100", "Gi", "m", " 1", "1 ", "0x10", "∞"])(
    "refuses %j",
    (text) => {
      expect(parseQuantity(text)).toBeUndefined();
    },
  );

  it("refuses negative and unsafe integers", () => {
    expect(parseQuantity(-1)).toBeUndefined();
    expect(parseQuantity(1.5)).toBeUndefined();
    expect(parseQuantity(2 ** 60)).toBeUndefined();
  });
});

describe("compareQuantities", () => {
  const cmp = (a: string | number, b: string | number) => {
    const [x, y] = [parseQuantity(a), parseQuantity(b)];
    if (x === undefined || y === undefined) throw new Error("bad input");
    return compareQuantities(x, y);
  };
  it.each([
    ["1", "1000m", 0],
    ["1Gi", "1073741824", 0],
    ["1Gi", "1G", 1],
    ["2G", "2Gi", -1],
    ["0.1", "100m", 0],
    ["1500m", 1, 1],
    ["999999999n", "1", -1],
    ["1e3", "1k", 0],
    ["1024Mi", "1Gi", 0],
  ] as const)("%s vs %s → %d", (a, b, want) => {
    expect(cmp(a, b)).toBe(want);
  });
});

describe("conversions", () => {
  it("rounds up to millis and units", () => {
    const q = parseQuantity("1.0005")!;
    expect(toMilli(q)).toBe(1001n);
    expect(toUnits(q)).toBe(2n);
    expect(toUnits(parseQuantity("2Gi")!)).toBe(2147483648n);
    expect(toNumber(parseQuantity("250m")!)).toBe(0.25);
  });
});

describe("Quantity schema", () => {
  it("accepts integers and quantity strings", () => {
    for (const v of [0, 4, "500m", "2Gi", "1.5"]) expect(Quantity.safeParse(v).success).toBe(true);
  });

  it("asks for quotes around a fractional number", () => {
    const r = Quantity.safeParse(1.5);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('a fractional quantity must be quoted, e.g. "1.5"');
  });

  it("explains the suffixes when a string is not a quantity", () => {
    const r = Quantity.safeParse("2GB");
    expect(r.error?.issues[0]?.message).toMatch(/^"2GB" is not a quantity; .*Ki, Mi, Gi/);
  });
});
