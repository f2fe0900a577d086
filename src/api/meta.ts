/** Names and types shared by every odop resource. */
import { z } from "zod";

export const GROUP = "odop.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = "odop";

/** How the message of an unknown-field issue starts; the validator names each key after it. */
export const UNKNOWN_FIELD = "unknown field";

/** RFC 1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric. */
export const DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** RFC 1123 subdomain: labels joined by '.'. */
export const DNS_SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

export const DnsLabel = z
  .string()
  .max(63)
  .regex(new RegExp(DNS_LABEL_PATTERN), {
    error: "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit",
  });

export const Timestamp = z.iso.datetime({ offset: true }).describe("RFC 3339 time, e.g. 2026-01-31T12:00:00Z");

/**
 * Object metadata as the API server accepts it. Every field of ObjectMeta is listed so
 * that a misspelt key (`lables:`) is reported instead of silently dropped.
 */
export const ObjectMeta = strict({
  name: z.string().max(253).optional(),
  generateName: z.string().max(253).optional(),
  namespace: DnsLabel.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.int().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  deletionGracePeriodSeconds: z.int().optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z
    .array(
      strict({
        apiVersion: z.string(),
        kind: z.string(),
        name: z.string(),
        uid: z.string(),
        controller: z.boolean().optional(),
        blockOwnerDeletion: z.boolean().optional(),
      }),
    )
    .optional(),
  managedFields: z.array(z.unknown()).optional(),
  selfLink: z.string().optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** What metav1.Condition allows in a reason (CamelCase, digits, _ , :), as the API server checks it. */
export const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
/** metav1.Condition's limits. */
export const CONDITION_REASON_MAX = 1024;
export const CONDITION_MESSAGE_MAX = 32768;

/** A condition, as metav1.Condition defines it. */
export const Condition = strict({
  type: z.string().max(316).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/),
  status: z.enum(["True", "False", "Unknown"]),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: Timestamp,
  reason: z.string().min(1).max(CONDITION_REASON_MAX).regex(REASON_PATTERN),
  message: z.string().max(CONDITION_MESSAGE_MAX),
});

/**
 * A reason the schema accepts, made from any text: a kubelet's "OutOfnvidia.com/gpu"
 * becomes "OutOfnvidia_com_gpu" (runs of other characters → "_"), a reason that does
 * not start with a letter gets `fallback` in front, and it is cut to `max`. Reasons come
 * from pod statuses, Slurm and errors: one the API server refuses would make every later
 * status write fail.
 */
export function asReason(raw: string, max: number = CONDITION_REASON_MAX, fallback = "Reason"): string {
  let reason = raw.replace(/[^A-Za-z0-9_,:]+/g, "_").replace(/[,:]+$/, "").replace(/^_+|_+$/g, "");
  if (!/^[A-Za-z]/.test(reason)) reason = reason === "" ? fallback : `${fallback}_${reason}`;
  reason = reason.slice(0, max).replace(/[,:]+$/, "");
  return REASON_PATTERN.test(reason) ? reason : fallback;
}

/**
 * `text` cut to `max` characters in the middle, saying how much was cut: the start says
 * what happened, the end of a log tail says why, so both are kept (two fifths of the
 * room for the start).
 */
export function truncated(text: string, max: number): string {
  if (text.length <= max) return text;
  const marker = (cut: number) => ` … [${cut} characters cut] … `;
  const room = max - marker(text.length).length;
  if (room <= 0) return text.slice(0, max);
  const head = Math.ceil(room * 0.4);
  const tail = room - head;
  return text.slice(0, head) + marker(text.length - head - tail) + text.slice(text.length - tail);
}

/** Conditions with every reason and message fitted to metav1.Condition's limits. */
export function fitConditions<C extends { reason: string; message: string }>(conditions: readonly C[]): C[] {
  return conditions.map((c) => ({ ...c, reason: asReason(c.reason), message: truncated(c.message, CONDITION_MESSAGE_MAX) }));
}
export type Condition = z.infer<typeof Condition>;

/** Conditions are a map keyed by type, as Kubernetes merges them. */
export const Conditions = keyedList(Condition, "type", 32);

/** The header shared by every kind; `kind` and `apiVersion` are checked by the caller. */
export function resource<K extends string, Spec extends z.ZodType, Status extends z.ZodType>(
  kind: K,
  spec: Spec,
  status: Status,
) {
  return strict({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(kind),
    metadata: ObjectMeta,
    spec,
    status: status.optional(),
  });
}

/**
 * A closed object: unknown keys are errors that name the key and list the keys that
 * are allowed, so a typo or an unsupported option never disappears silently.
 */
export function strict<S extends z.core.$ZodLooseShape>(shape: S) {
  const known = Object.keys(shape).join(", ");
  const expected = `${UNKNOWN_FIELD}; expected ${known === "" ? "no fields here" : `one of: ${known}`}`;
  return z.strictObject(shape, { error: (issue) => (issue.code === "unrecognized_keys" ? expected : undefined) });
}


/**
 * A list whose items are keyed by one field (Kubernetes `x-kubernetes-list-type: map`):
 * the API server merges by that key and refuses duplicates; zod refuses them too.
 */
export function keyedList<T extends z.ZodType>(item: T, key: string, max: number) {
  return z
    .array(item)
    .max(max)
    .superRefine((items, ctx) => {
      const seen = new Set<unknown>();
      items.forEach((entry, index) => {
        const value = (entry as Record<string, unknown>)[key];
        if (seen.has(value)) {
          ctx.addIssue({ code: "custom", path: [index, key], message: `duplicate ${key} "${String(value)}"; each ${key} may appear once`, input: value });
        }
        seen.add(value);
      });
    })
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key] });
}
