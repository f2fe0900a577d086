/**
 * data_parser v0.0.41 (Slurm 24.05–25.11). No document of it is kept here: it is
 * v0.0.40 plus the change the release notes name, the batch script in `job.script`
 * (the request's top-level `script` is deprecated). Everything else is data-parser.ts.
 */
import { dataParserApi } from "./data-parser.ts";
import type { SlurmTransport } from "./transport.ts";
import type { SlurmApi } from "./types.ts";

export function v0041Api(transport: SlurmTransport): SlurmApi {
  return dataParserApi(transport, { version: "v0.0.41", script: "job" });
}
