/**
 * The slurmrestd client's settings as they come from a config file or flags, validated
 * with zod; `clientOptionsOf` turns them into createSlurmApi's options. Messages name
 * the field and the fix, never a token.
 */
import { z } from "zod";
import { mintedToken, staticToken, tokenFile, type SlurmAuth } from "./auth.ts";
import { endpointProblem } from "./transport.ts";
import { SLURM_API_VERSIONS } from "./types.ts";

export const SlurmEndpoint = z.string().superRefine((endpoint, ctx) => {
  const problem = endpointProblem(endpoint);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** Exactly one source of tokens: `token`, `tokenFile` or `jwtKeyFile`. */
export const SlurmAuthConfig = z
  .strictObject({
    /** Slurm user odop acts as (X-SLURM-USER-NAME). */
    user: z.string().min(1, { error: "must name the Slurm user odop submits as, e.g. odop" }),
    /** A token made by `scontrol token`, e.g. from env SLURM_JWT. */
    token: z.string().optional(),
    /** A file holding such a token (a mounted Secret); read again when it changes. */
    tokenFile: z.string().optional(),
    /** The cluster's jwt key (slurm.conf AuthAltParameters=jwt_key=…): odop mints its own tokens. */
    jwtKeyFile: z.string().optional(),
    /** Lifespan of minted tokens; default 1800. */
    tokenLifespanSeconds: z.int().min(60, { error: "must be at least 60 seconds" }).max(86_400 * 7, { error: "must be at most a week" }).optional(),
  })
  .superRefine((auth, ctx) => {
    const given = (["token", "tokenFile", "jwtKeyFile"] as const).filter((k) => auth[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message: `give exactly one of token, tokenFile or jwtKeyFile (got ${given.length === 0 ? "none" : given.join(" and ")})`,
      });
    }
    if (auth.token !== undefined && auth.token.trim() === "") ctx.addIssue({ code: "custom", path: ["token"], message: "is empty (is SLURM_JWT set?)" });
    for (const key of ["tokenFile", "jwtKeyFile"] as const) {
      const path = auth[key];
      if (path !== undefined && !path.startsWith("/")) ctx.addIssue({ code: "custom", path: [key], message: "must be an absolute path" });
    }
    if (auth.tokenLifespanSeconds !== undefined && auth.jwtKeyFile === undefined) {
      ctx.addIssue({ code: "custom", path: ["tokenLifespanSeconds"], message: "only applies to tokens minted from jwtKeyFile" });
    }
  });
export type SlurmAuthConfig = z.infer<typeof SlurmAuthConfig>;

export const SlurmClientConfig = z.strictObject({
  /** "http://host:port" or "unix:/path/to/socket". */
  endpoint: SlurmEndpoint,
  /** An API version, or "auto" to ask the server (default). */
  version: z.enum([...SLURM_API_VERSIONS, "auto"]).default("auto"),
  /** Per request; default 10 s. */
  timeoutMs: z.int().min(100, { error: "must be at least 100 ms" }).max(600_000, { error: "must be at most 600000 ms" }).default(10_000),
  /** Connections open at once; default 8. */
  maxConnections: z.int().min(1, { error: "must be at least 1" }).max(64, { error: "must be at most 64 (slurmrestd limits its connections)" }).default(8),
  auth: SlurmAuthConfig,
});
export type SlurmClientConfig = z.infer<typeof SlurmClientConfig>;

/** Validates settings; throws a RangeError with one line per problem, "auth.tokenFile: must be an absolute path". */
export function parseSlurmClientConfig(input: unknown): SlurmClientConfig {
  const parsed = SlurmClientConfig.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `${i.path.length === 0 ? "(settings)" : i.path.map(String).join(".")}: ${i.message}`);
  throw new RangeError(`invalid Slurm client settings:\n  ${lines.join("\n  ")}`);
}

export function authOf(config: SlurmAuthConfig): SlurmAuth {
  if (config.jwtKeyFile !== undefined) {
    return mintedToken({ user: config.user, keyFile: config.jwtKeyFile, ...(config.tokenLifespanSeconds === undefined ? {} : { lifespanSeconds: config.tokenLifespanSeconds }) });
  }
  if (config.tokenFile !== undefined) return tokenFile(config.user, config.tokenFile);
  return staticToken(config.user, config.token ?? "");
}

/** createSlurmApi's options from validated settings. */
export function clientOptionsOf(config: SlurmClientConfig): { endpoint: string; auth: SlurmAuth; version: SlurmClientConfig["version"]; timeoutMs: number; maxConnections: number } {
  return { endpoint: config.endpoint, auth: authOf(config.auth), version: config.version, timeoutMs: config.timeoutMs, maxConnections: config.maxConnections };
}
