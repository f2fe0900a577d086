/**
 * The slurmrestd client: `createSlurmApi` gives a SlurmApi (types.ts) for one
 * slurmrestd, speaking the API version asked for or the newest both sides know.
 *
 * Layout (one folder per external system):
 *
 *   types.ts        SlurmApi and its types, in odop's words: what the backend sees
 *   client.ts       createSlurmApi: transport + version discovery + adapter
 *   config.ts       the client's settings, validated with zod
 *   transport.ts    HTTP over TCP or a unix socket: connections, timeouts, retries, auth headers
 *   auth.ts         token providers: static, file (re-read on change), minted HS256 JWT
 *   reply.ts        errors[]/warnings[] and HTTP status → errors; zod validation of replies
 *   errors.ts       SlurmApiError, SlurmUnreachableError, SlurmReplyError
 *   discovery.ts    which API version the server serves
 *   wire.ts         wire → odop mappings every version shares (states, exit codes, numbers)
 *   v0038.ts        openapi/v0.0.38 (Slurm 22.05), its own shapes
 *   data-parser.ts  data_parser versions, one module; v0040/v0041/v0042/v0044.ts pick the dialect
 *
 * Contracts:
 *
 * - Every reply is validated with zod at the edge; a mismatch is a SlurmReplyError that
 *   names the field and the version. Only fields odop uses are read.
 * - Errors: SlurmUnreachableError (`transient: true`, `reason: "SlurmUnreachable"`)
 *   when slurmrestd or slurmctld gave no usable answer: retry with backoff.
 *   SlurmApiError when Slurm said no (4xx, or errors[] in any answer, HTTP 200 and
 *   Slurm 22.05's HTTP 500 included): terminal, its message quotes Slurm. Warnings are
 *   logged, not thrown.
 * - GET and DELETE are retried a few times within about a second on transient
 *   failures; POST job/submit never is. A submit that fails with SlurmUnreachableError
 *   may still have reached slurmctld: look for the job (by its comment) before
 *   submitting again.
 * - At most `maxConnections` sockets (default 8), kept alive; each request times out
 *   after `timeoutMs` (default 10 s).
 * - job() is undefined for a job slurmctld does not know; cancel() of an ended or
 *   unknown job is no error.
 * - Tokens never reach logs or messages.
 */
import { discoverVersion } from "./discovery.ts";
import type { SlurmAuth } from "./auth.ts";
import { createTransport, type RetryOptions, type SlurmLog, type SlurmTransport } from "./transport.ts";
import type { SlurmApi, SlurmApiVersion } from "./types.ts";
import { v0038Api } from "./v0038.ts";
import { v0040Api } from "./v0040.ts";
import { v0041Api } from "./v0041.ts";
import { v0042Api } from "./v0042.ts";
import { v0044Api } from "./v0044.ts";

export type SlurmApiOptions = {
  /** "http://host:port" or "unix:/absolute/path/to/socket". */
  endpoint: string;
  auth: SlurmAuth;
  /** A version, or "auto" (default): the newest the server serves (see discovery.ts). */
  version?: SlurmApiVersion | "auto";
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Sockets open at once; default 8. */
  maxConnections?: number;
  /** Retries of GET and DELETE within the client; defaults in transport.ts. */
  retry?: Partial<RetryOptions>;
  log?: SlurmLog;
};

/** A SlurmApi that holds sockets: close() when done. */
export type SlurmClient = SlurmApi & { close(): void };

const ADAPTERS: Readonly<Record<SlurmApiVersion, (transport: SlurmTransport) => SlurmApi>> = {
  "v0.0.38": v0038Api,
  "v0.0.40": v0040Api,
  "v0.0.41": v0041Api,
  "v0.0.42": v0042Api,
  "v0.0.44": v0044Api,
};

/**
 * A client for one slurmrestd. With version "auto" it asks the server first (one or
 * more GETs), so it can throw what a request throws: SlurmUnreachableError when
 * slurmrestd is not up yet (retry later), SlurmApiError when it serves no version odop
 * speaks or refuses the credentials.
 */
export async function createSlurmApi(options: SlurmApiOptions): Promise<SlurmClient> {
  const transport = createTransport({
    endpoint: options.endpoint,
    auth: options.auth,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  try {
    const version = options.version === undefined || options.version === "auto" ? await discoverVersion(transport, options.log) : options.version;
    return { ...slurmApiFor(version, transport), close: () => transport.close() };
  } catch (error) {
    transport.close();
    throw error;
  }
}

/** The adapter for `version` over a transport (tests give a fake one). */
export function slurmApiFor(version: SlurmApiVersion, transport: SlurmTransport): SlurmApi {
  return ADAPTERS[version](transport);
}
