/**
 * data_parser v0.0.40 (Slurm 23.11–25.05). No document of it is kept here: it follows
 * the release notes (environment as "K=V" strings, {set, infinite, number} integers,
 * state arrays, all from v0.0.39/40), with the batch script still in the request's
 * top-level `script`. Everything else is data-parser.ts.
 */
import { dataParserApi } from "./data-parser.ts";
import type { SlurmTransport } from "./transport.ts";
import type { SlurmApi } from "./types.ts";

export function v0040Api(transport: SlurmTransport): SlurmApi {
  return dataParserApi(transport, { version: "v0.0.40", script: "request" });
}
