/** data_parser v0.0.42 (Slurm 24.11–26.05), per its OpenAPI document; the shapes are in data-parser.ts. */
import { dataParserApi } from "./data-parser.ts";
import type { SlurmTransport } from "./transport.ts";
import type { SlurmApi } from "./types.ts";

export function v0042Api(transport: SlurmTransport): SlurmApi {
  return dataParserApi(transport, { version: "v0.0.42", script: "job" });
}
