/**
 * Start and finish notifications (operator-engine's, signed): a JSON POST to the URLs in
 * stages.publish.notify. The receiver checks
 *
 *   X-Odop-Signature: sha256=<hex HMAC-SHA256 of "<X-Odop-Timestamp>.<raw body>">
 *
 * with the shared key, and rejects timestamps too far from its clock, which stops
 * replays. X-Odop-Delivery stays the same across retries, so a receiver can drop
 * duplicates of a delivery whose answer got lost.
 */
import { createHmac, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { DnsLabel, strict, Timestamp } from "../api/meta.ts";
import { EXECUTION_PHASES } from "../api/opexecution.ts";
import { StagingError } from "./errors.ts";
import { post, type HttpOptions } from "./http.ts";
import { parseLocation } from "./location.ts";

/** Environment variable holding the notification key. */
export const NOTIFY_KEY_ENV = "ODOP_NOTIFY_KEY";

export const SIGNATURE_HEADER = "X-Odop-Signature";
export const TIMESTAMP_HEADER = "X-Odop-Timestamp";
export const DELIVERY_HEADER = "X-Odop-Delivery";

export const NotificationPayload = strict({
  event: z.enum(["started", "finished"]),
  execution: strict({
    name: z.string().min(1).max(253),
    namespace: DnsLabel,
    executionId: z.string().min(1).max(64),
    task: DnsLabel,
  }),
  phase: z.enum(EXECUTION_PHASES),
  reason: z.string().max(256).optional(),
  message: z.string().max(4096).optional(),
  startedAt: Timestamp.optional(),
  finishedAt: Timestamp.optional(),
  /** Where the outputs went (redacted locations). */
  outputs: z.array(z.string().max(4096)).max(256).optional(),
});
export type NotificationPayload = z.infer<typeof NotificationPayload>;

/** Hex HMAC-SHA256 of `${timestampSeconds}.${body}` under `key`. */
export function signNotification(body: string, key: string, timestampSeconds: number): string {
  return createHmac("sha256", key).update(`${timestampSeconds}.${body}`).digest("hex");
}

export type NotifyOptions = HttpOptions & {
  /** The clock, in milliseconds; each attempt is stamped (and signed) when it is sent. */
  readonly now?: () => number;
};

const NOTIFY_TIMEOUT_MS = 10_000;

/**
 * POSTs `payload` as JSON to `url`, signed when `key` is given; retried for network
 * errors and 5xx. The payload is validated first, so a receiver never gets a shape the
 * schema does not allow.
 */
export async function sendNotification(url: string, payload: NotificationPayload, key: string | undefined, options: NotifyOptions = {}): Promise<void> {
  const location = parseLocation(url);
  if (location.kind !== "http") throw new StagingError("InvalidLocation", `notification URL must be http:// or https://, not ${location.kind}`);
  const body = JSON.stringify(NotificationPayload.parse(payload));
  const delivery = randomUUID();
  const now = options.now ?? Date.now;
  const headers = (): Record<string, string> => {
    const timestamp = Math.floor(now() / 1000);
    return {
      "content-type": "application/json",
      [TIMESTAMP_HEADER]: String(timestamp),
      [DELIVERY_HEADER]: delivery,
      ...(key === undefined ? {} : { [SIGNATURE_HEADER]: `sha256=${signNotification(body, key, timestamp)}` }),
    };
  };
  await post(location.url, body, headers, { timeoutMs: NOTIFY_TIMEOUT_MS, ...options });
}

export type NotifyKeySources = {
  /** Where ODOP_NOTIFY_KEY is looked up; usually process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A file holding the key, e.g. a mounted Secret. */
  readonly file?: string;
};

/**
 * The notification key: ODOP_NOTIFY_KEY when set and not blank, else the contents of
 * `file`, trimmed; undefined when neither is given (notifications go out unsigned). A
 * key file that is given but missing or blank is an error: signing was asked for, and
 * silently sending unsigned would hide the mistake.
 */
export async function loadNotifyKey(sources: NotifyKeySources): Promise<string | undefined> {
  const fromEnv = sources.env?.[NOTIFY_KEY_ENV]?.trim();
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (sources.file === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(sources.file, "utf8");
  } catch (error) {
    throw new StagingError("Io", `cannot read the notification key file ${sources.file}: ${String(error)}`, { cause: error });
  }
  const key = text.trim();
  if (key === "") throw new StagingError("Io", `the notification key file ${sources.file} is empty`);
  return key;
}
