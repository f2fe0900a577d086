/** data_parser v0.0.44 (Slurm 25.11 on), per its OpenAPI document; the shapes are in data-parser.ts. */
import { dataParserApi } from "./data-parser.ts";
import type { SlurmTransport } from "./transport.ts";
import type { SlurmApi } from "./types.ts";

export function v0044Api(transport: SlurmTransport): SlurmApi {
  return dataParserApi(transport, { version: "v0.0.44", script: "job" });
}
