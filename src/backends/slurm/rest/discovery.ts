/**
 * Which API version to speak to a slurmrestd: the newest one odop supports that the
 * server serves.
 *
 * 1. GET /openapi/v3, else GET /openapi: slurmrestd serves the merged OpenAPI document
 *    of the plugins it loaded there (22.05 binds /openapi, /openapi.json, /openapi.yaml
 *    and /openapi/v3, and its 404 page says "Please view /openapi/v3"). Its path keys
 *    carry the version: "/slurm/v0.0.38/ping" (22.05 joins server URL and path without a
 *    trailing slash; later releases keep it).
 * 2. If neither answers with such a document: GET /slurm/<version>/ping/ for each
 *    version odop supports, newest first; 404 means "not served".
 *
 * Authentication is required for both (slurmrestd checks it before routing), so a 401
 * fails discovery rather than being taken for "not served".
 */
import { SlurmApiError, SlurmReplyError, type SlurmRequestRef } from "./errors.ts";
import type { SlurmLog, SlurmTransport } from "./transport.ts";
import { SLURM_API_VERSIONS, type SlurmApiVersion } from "./types.ts";

const OPENAPI_PATHS = ["/openapi/v3", "/openapi"] as const;

/** Supported versions, newest first. */
export const NEWEST_FIRST: readonly SlurmApiVersion[] = [...SLURM_API_VERSIONS].sort((a, b) => compareVersions(b, a));

/** The slurmctld API versions an OpenAPI document's paths name ("/slurm/v0.0.42/…"), sorted, each once. */
export function versionsInDocument(document: unknown): string[] | undefined {
  const paths = typeof document === "object" && document !== null ? (document as { paths?: unknown }).paths : undefined;
  if (typeof paths !== "object" || paths === null) return undefined;
  const found = new Set<string>();
  for (const key of Object.keys(paths)) {
    const version = /^\/slurm\/(v\d+\.\d+\.\d+)(\/|$)/.exec(key)?.[1];
    if (version !== undefined) found.add(version);
  }
  return [...found].sort(compareVersions);
}

export async function discoverVersion(transport: SlurmTransport, log?: SlurmLog): Promise<SlurmApiVersion> {
  for (const path of OPENAPI_PATHS) {
    const served = await fromDocument(transport, path);
    if (served === undefined) continue;
    const chosen = NEWEST_FIRST.find((v) => served.includes(v));
    log?.debug({ endpoint: transport.endpoint, served, chosen }, "slurmrestd API versions");
    if (chosen !== undefined) return chosen;
    throw noVersion({ method: "GET", path }, transport.endpoint, served.length === 0 ? "no /slurm/ paths" : served.join(", "));
  }
  for (const version of NEWEST_FIRST) {
    const path = `/slurm/${version}/ping/`;
    try {
      await transport.request({ method: "GET", path });
      log?.debug({ endpoint: transport.endpoint, chosen: version }, "slurmrestd API version found by ping");
      return version;
    } catch (error) {
      if (!(error instanceof SlurmApiError && error.status === 404)) throw error;
    }
  }
  throw noVersion({ method: "GET", path: `/slurm/{${NEWEST_FIRST.join(",")}}/ping/` }, transport.endpoint, "none of them (all 404)");
}

/** The versions the document at `path` lists; undefined when there is no such document there. */
async function fromDocument(transport: SlurmTransport, path: string): Promise<string[] | undefined> {
  try {
    const { body } = await transport.request({ method: "GET", path });
    return versionsInDocument(body);
  } catch (error) {
    if ((error instanceof SlurmApiError && error.status === 404) || error instanceof SlurmReplyError) return undefined;
    throw error;
  }
}

function noVersion(request: SlurmRequestRef, endpoint: string, served: string): SlurmApiError {
  const detail = `slurmrestd at ${endpoint} serves ${served}; odop speaks ${NEWEST_FIRST.join(", ")}: load one of them (slurmrestd -s openapi/v0.0.38 on Slurm 22.05, data_parser plugins from 23.11) or set the version`;
  return new SlurmApiError(request, 404, [], detail);
}

function compareVersions(a: string, b: string): number {
  const pa = a.slice(1).split(".").map(Number);
  const pb = b.slice(1).split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
