/**
 * `odop agent`'s options, validated with zod. The CLI maps its flags and environment
 * variables onto these keys; {@link parseAgentOptions} returns every problem at once, each
 * naming the option (its key path) and what it takes.
 */
import { z } from "zod";
import { MAX_SAMPLES_PER_PUSH } from "../api/agent-push.ts";

const httpUrl = z
  .string({ error: "the controller's URL is required, e.g. https://odop-controller.odop-system:8443" })
  .refine((v) => {
    try {
      const url = new URL(v);
      return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
    } catch {
      return false;
    }
  }, "must be an http:// or https:// URL, e.g. https://odop-controller.odop-system:8443");

const regex = z
  .string()
  .min(1)
  .max(1024)
  .refine((v) => {
    try {
      new RegExp(v);
      return true;
    } catch {
      return false;
    }
  }, "must be a valid regular expression (JavaScript syntax), e.g. ^srun .*simulation");

/** `host:port`, `[v6]:port` or `:port` (all interfaces). */
const listen = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, "must be host:port or :port, e.g. 0.0.0.0:9443")
  .transform((v) => {
    const colon = v.lastIndexOf(":");
    const host = v.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    return { host: host === "" ? "0.0.0.0" : host, port: Number(v.slice(colon + 1)) };
  })
  .refine((l) => l.port <= 65_535, "the port must be at most 65535");

export const MainOptionsSchema = z
  .strictObject({
    slurmJob: z.int("must be a Slurm job id (a whole number)").min(1, "must be a Slurm job id (1 or more)").optional(),
    kubernetesPods: z.boolean().optional(),
    pidFile: z.string().startsWith("/", "must be an absolute path").optional(),
    command: regex.optional(),
    cgroup: z.string().min(1).max(4096).optional(),
  })
  .describe("how to recognise the main application; several add up; none: the whole node except odop's work");

export const AgentOptions = z
  .strictObject({
    /** The controller's base URL; pushes go to <controller>/v1/samples. */
    controller: httpUrl,
    /** The bearer token, or a file holding it (a mounted Secret: reread on every push, so rotation applies). */
    token: z.string().min(1, "must not be empty").optional(),
    tokenFile: z.string().min(1, "must be a file path").optional(),
    /** PEM file of the CA that signed the controller's certificate (https; default: the system's CAs). */
    controllerCaFile: z.string().min(1).optional(),
    /** Node name in samples; default SLURMD_NODENAME when set, else the host name. */
    node: z.string().min(1).max(253, "must be at most 253 characters").optional(),
    intervalMs: z
      .int("must be a whole number of milliseconds")
      .min(100, "must be at least 100 ms (sampling faster costs more than it tells)")
      .max(3_600_000, "must be at most one hour")
      .default(1000),
    main: MainOptionsSchema.optional(),
    bufferSamples: z.int().min(1, "must be at least 1").max(1_000_000, "must be at most 1000000").default(600),
    batchSamples: z.int().min(1).max(MAX_SAMPLES_PER_PUSH, `must be at most ${MAX_SAMPLES_PER_PUSH}`).default(1),
    batchMs: z.int().min(0).max(3_600_000).default(1000),
    requestTimeoutMs: z.int().min(100, "must be at least 100 ms").max(600_000).default(10_000),
    /** On SIGTERM/SIGINT, how long to keep trying to send what is buffered. */
    shutdownFlushMs: z.int().min(0).max(600_000).default(5000),
    /** GPUs through nvidia-smi: auto (when it is on PATH) or off. */
    gpu: z.enum(["auto", "off"], "must be auto or off").default("auto"),
    /** Least time between two nvidia-smi runs (never less than intervalMs). */
    gpuEveryMs: z.int().min(100).max(3_600_000).default(5000),
    /** The freezer API for the Kubernetes backend (pause/resume of stage pods); off when absent. */
    freezer: z
      .strictObject({
        listen,
        tlsCertFile: z.string().min(1).optional(),
        tlsKeyFile: z.string().min(1).optional(),
        cpuManagerState: z.string().min(1).optional(),
      })
      .refine((f) => (f.tlsCertFile === undefined) === (f.tlsKeyFile === undefined), {
        message: "set both tlsCertFile and tlsKeyFile, or neither",
        path: ["tlsCertFile"],
      })
      .optional(),
  })
  .refine((o) => (o.token === undefined) !== (o.tokenFile === undefined), {
    message: "set exactly one of token or tokenFile (a file is better: it is not in the process list and can be rotated)",
    path: ["token"],
  });
export type AgentOptions = z.output<typeof AgentOptions>;
export type AgentOptionsInput = z.input<typeof AgentOptions>;

export type AgentOptionsResult = { ok: true; options: AgentOptions } | { ok: false; problems: string[] };

/** Validates `input`; every problem as `<option>: <what it takes>`. */
export function parseAgentOptions(input: unknown): AgentOptionsResult {
  const result = AgentOptions.safeParse(input);
  if (result.success) return { ok: true, options: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => {
      const path = issue.path.join(".");
      return `${path === "" ? "options" : path}: ${issue.message}`;
    }),
  };
}
