/**
 * The hand-written push check must never accept what zod refuses, nor return anything
 * but what zod would (fast-check.ts's contract). Compared on valid pushes and on
 * thousands of random mutations of them, from a fixed seed.
 */
import { describe, expect, it } from "vitest";
import { AgentPush } from "../../../src/api/agent-push.ts";
import { isAgentPush } from "../../../src/controller/ingest/fast-check.ts";
import { pushOf, sampleOf } from "./pushes.ts";
import { rng } from "../../support/rng.ts";


function valid(): any {
  const t = 1_700_000_000_000;
  return pushOf({
    seq: 3,
    sentAt: t,
    samples: [
      sampleOf("n1", t - 1000, [0.5, 1, 0]),
      sampleOf("n1", t, [0.25, 0, 1], {
        io: { diskReadBytesPerSecond: 1, diskWriteBytesPerSecond: 0, networkReceiveBytesPerSecond: 2.5, networkTransmitBytesPerSecond: 0 },
        gpus: [{ id: 0, utilization: 0.5, memoryUsedBytes: 10, memoryTotalBytes: 100 }],
      }),
    ],
  });
}

/** Every path to a value (leaf or not) in `value`. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (typeof value === "object" && value !== null) for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

const ODD_VALUES: unknown[] = [
  -1, -0, 0, 0.5, 1, 1.5, 2, 1e300, -1e-9, 3_600_000, 3_600_001, 65_535, 65_536, 1024, 1025, 2 ** 53, 2 ** 53 - 1, 0.1,
  "", "v1", "v2", "n1", "n2", "x".repeat(7), "x".repeat(8), "x".repeat(64), "x".repeat(65), "x".repeat(254),
  null, true, false, [], {}, [1], { id: 0 },
];

function mutate(push: any, r: () => number): any {
  const copy = structuredClone(push);
  const all = paths(copy).filter((p) => p.length > 0);
  const path = all[Math.floor(r() * all.length)]!;
  let parent: any = copy;
  for (const key of path.slice(0, -1)) parent = parent[key];
  const key = path.at(-1)!;
  const what = r();
  if (what < 0.6) parent[key] = ODD_VALUES[Math.floor(r() * ODD_VALUES.length)];
  else if (what < 0.75) {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[key];
  } else if (what < 0.9) {
    if (typeof parent === "object" && parent !== null && !Array.isArray(parent)) parent[["extra", "folders", "io", "gpus", "__proto__"][Math.floor(r() * 5)]!] = ODD_VALUES[Math.floor(r() * ODD_VALUES.length)];
  } else if (Array.isArray(parent)) parent.push(structuredClone(parent[0]));
  else parent[key] = structuredClone(parent[key]);
  // Through JSON, as the server sees it (a "__proto__" key then becomes an own property).
  return JSON.parse(JSON.stringify(copy).replace('"extra"', '"__proto__"'));
}

describe("isAgentPush", () => {
  it("accepts valid pushes without folders, exactly as zod returns them", () => {
    const push = valid();
    expect(isAgentPush(push)).toBe(true);
    expect(AgentPush.parse(push)).toEqual(push);
    expect(isAgentPush({ ...push, samples: [] })).toBe(true);
  });

  it("leaves folder reports to zod", () => {
    expect(isAgentPush({ ...valid(), folders: [] })).toBe(false);
  });

  it("never accepts what zod refuses, nor anything zod would return changed (5,000 random mutations)", () => {
    const r = rng(7);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      let push = valid();
      const rounds = 1 + Math.floor(r() * 3);
      for (let k = 0; k < rounds; k++) push = mutate(push, r);
      const zod = AgentPush.safeParse(push);
      if (isAgentPush(push)) {
        accepted++;
        expect(zod.success, JSON.stringify(push)).toBe(true);
        expect(zod.data).toEqual(push);
      } else if (!zod.success) refused++;
    }
    // The mutations exercise both sides.
    expect(accepted).toBeGreaterThan(200);
    expect(refused).toBeGreaterThan(2000);
  });
});
