/**
 * Kubernetes' naming rules for what odop writes into pods (apimachinery's validation):
 * object names are DNS subdomains, label values are ≤ 63 characters of [A-Za-z0-9-_.]
 * starting and ending alphanumeric, annotations together are ≤ 256 KiB. Checked before a
 * pod is built, so a bad name fails with odop's message instead of an API server 422.
 */
import { DNS_SUBDOMAIN_PATTERN } from "../../api/meta.ts";

const DNS_SUBDOMAIN_RE = new RegExp(DNS_SUBDOMAIN_PATTERN);
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** The API server's limit on the keys and values of an object's annotations together. */
export const ANNOTATIONS_MAX_BYTES = 256 * 1024;

/** Why a name, label or annotation set is refused; undefined when Kubernetes accepts it. */
export function objectNameProblem(name: string): string | undefined {
  if (name.length > 253) return `"${name}" is longer than 253 characters`;
  if (!DNS_SUBDOMAIN_RE.test(name)) return `"${name}" is not a DNS subdomain (lower-case letters, digits, '-' and '.')`;
  return undefined;
}

export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return `label value "${value}" is longer than 63 characters`;
  if (!LABEL_VALUE_RE.test(value)) return `label value "${value}" has characters other than letters, digits, '-', '_' and '.', or does not start and end with a letter or digit`;
  return undefined;
}

/** A label key: an optional DNS-subdomain prefix and '/', then a name of ≤ 63 characters. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && objectNameProblem(prefix) !== undefined) return `label key "${key}" has a prefix that is not a DNS subdomain`;
  if (name.length > 63 || !LABEL_NAME_RE.test(name)) return `label key "${key}" is not a valid label name`;
  return undefined;
}

export function annotationsProblem(annotations: Readonly<Record<string, string>>): string | undefined {
  let bytes = 0;
  for (const [k, v] of Object.entries(annotations)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  if (bytes > ANNOTATIONS_MAX_BYTES) return `annotations take ${bytes} bytes, more than Kubernetes' ${ANNOTATIONS_MAX_BYTES}`;
  return undefined;
}
