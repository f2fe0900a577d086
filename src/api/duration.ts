/**
 * Durations in the syntax Kubernetes uses for metav1.Duration (Go's time.ParseDuration):
 * "90s", "5m", "1h30m", "250ms". Days are not a unit: write "24h".
 */
import { z } from "zod";

const UNIT_MS = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** The grammar; also the CRD's `pattern`. */
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$";
const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)/g;

/** Milliseconds, or undefined when the string is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(PART_RE)) {
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return ms;
}

/** Formats milliseconds as a duration string, e.g. 5_400_000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 || (h === 0 && m === 0) ? `${s}s` : ""}`;
}

/** A positive duration such as "30s", "5m" or "1h30m". */
export const Duration = z
  .string()
  .max(64)
  .refine((v) => (parseDuration(v) ?? 0) > 0, {
    error: (issue) =>
      `"${String(issue.input)}" is not a positive duration; write e.g. "30s", "5m", "1h30m" (units: ms, s, m, h)`,
  })
  .meta({ "x-odop-type": "duration" });
export type Duration = z.infer<typeof Duration>;
