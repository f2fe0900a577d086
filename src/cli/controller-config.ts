/**
 * `odop controller`'s configuration: environment variables (what deploy/ and the chart
 * set, see src/deploy/controller.ts) overridden by flags, parsed once with zod. A bad
 * value stops the controller at start with a message naming the variable or flag and
 * what it takes — never a crash loop with a stack trace.
 */
import { hostname } from "node:os";
import { z } from "zod";
import { DnsLabel } from "../api/meta.ts";

const bool = (name: string) =>
  z.enum(["true", "false"], { error: `${name} is true or false` }).transform((v) => v === "true");

export const ControllerConfig = z
  .strictObject({
    namespace: DnsLabel.describe("ODOP_NAMESPACE / --namespace"),
    identity: z.string().min(1).max(253),
    watchNamespaces: z.array(DnsLabel).max(1000),
    leaderElection: z.boolean(),
    leaseName: DnsLabel,
    podTemplates: z.string().max(253).optional(),
    workspace: z.discriminatedUnion("kind", [
      z.strictObject({ kind: z.literal("emptyDir") }),
      z.strictObject({ kind: z.literal("pvc"), claimName: DnsLabel }),
    ]),
    httpPort: z.int().min(0).max(65_535),
    /** Where node agents push samples; 0: no agents (the requests-based node view only). */
    ingestPort: z.int().min(0).max(65_535),
    workers: z.int().min(1).max(64),
    cleanup: z.enum(["delete-on-success", "keep"]),
    statePath: z.string().min(1),
  })
  .describe("odop controller configuration");
export type ControllerConfig = z.infer<typeof ControllerConfig>;

/** Flags of `odop controller`; each overrides its environment variable. */
export type ControllerFlags = Partial<{
  namespace: string;
  watchNamespaces: string;
  leaderElection: string;
  leaseName: string;
  podTemplates: string;
  workspace: string;
  workspaceClaim: string;
  httpPort: string;
  ingestPort: string;
  workers: string;
  cleanup: string;
}>;

const SOURCES = {
  namespace: ["ODOP_NAMESPACE", "--namespace"],
  watchNamespaces: ["ODOP_WATCH_NAMESPACES", "--watch-namespaces"],
  leaderElection: ["ODOP_LEADER_ELECTION", "--leader-election"],
  leaseName: ["ODOP_LEASE_NAME", "--lease-name"],
  podTemplates: ["ODOP_POD_TEMPLATES", "--pod-templates"],
  workspace: ["ODOP_WORKSPACE", "--workspace"],
  workspaceClaim: ["ODOP_WORKSPACE_CLAIM", "--workspace-claim"],
  httpPort: ["ODOP_HTTP_PORT", "--http-port"],
  ingestPort: ["ODOP_INGEST_PORT", "--ingest-port"],
  workers: ["ODOP_WORKERS", "--workers"],
  cleanup: ["ODOP_CLEANUP", "--cleanup"],
} as const;

export type ConfigResult = { ok: true; config: ControllerConfig } | { ok: false; problems: string[] };

/** Reads env then flags; returns every problem at once, each naming where the value came from. */
export function loadControllerConfig(env: NodeJS.ProcessEnv, flags: ControllerFlags): ConfigResult {
  const problems: string[] = [];
  const raw = (key: keyof typeof SOURCES): { value: string | undefined; from: string } => {
    const [variable, flag] = SOURCES[key];
    const fromFlag = flags[key];
    if (fromFlag !== undefined) return { value: fromFlag, from: flag };
    const fromEnv = env[variable];
    return { value: fromEnv === "" ? undefined : fromEnv, from: variable };
  };
  const parse = <T>(key: keyof typeof SOURCES, schema: z.ZodType<T>, fallback: string): T | undefined => {
    const { value, from } = raw(key);
    const result = schema.safeParse(value ?? fallback);
    if (result.success) return result.data;
    problems.push(`${from}=${JSON.stringify(value ?? fallback)}: ${result.error.issues.map((i) => i.message).join("; ")}`);
    return undefined;
  };
  const int = (name: string, min: number, max: number) =>
    z.coerce.number({ error: `${name} is a whole number` }).pipe(z.int({ error: `${name} is a whole number` }).min(min, { error: `${name} is at least ${min}` }).max(max, { error: `${name} is at most ${max}` }));

  const namespace = parse("namespace", DnsLabel, "odop-system");
  const watch = raw("watchNamespaces");
  const watchNamespaces = (watch.value ?? "").split(",").map((n) => n.trim()).filter(Boolean);
  for (const n of watchNamespaces) {
    const r = DnsLabel.safeParse(n);
    if (!r.success) problems.push(`${watch.from}: "${n}" ${r.error.issues[0]?.message ?? "is not a namespace"}`);
  }
  const leaderElection = parse("leaderElection", bool(SOURCES.leaderElection.join(" / ")), "true");
  const leaseName = parse("leaseName", DnsLabel, "odop-controller");
  const podTemplates = raw("podTemplates").value;
  const workspaceKind = parse("workspace", z.enum(["emptyDir", "pvc"], { error: "the workspace is emptyDir or pvc" }), "emptyDir");
  const claim = raw("workspaceClaim");
  if (workspaceKind === "pvc" && claim.value === undefined) problems.push(`${claim.from}: required when the workspace is pvc (the claim stage pods mount)`);
  const httpPort = parse("httpPort", int("the HTTP port", 0, 65_535), "8080");
  const ingestPort = parse("ingestPort", int("the agents' ingest port", 0, 65_535), "0");
  if (ingestPort !== undefined && ingestPort > 0 && !env["ODOP_AGENT_TOKEN_FILE"] && !env["ODOP_AGENT_TOKEN"]) {
    problems.push(`ODOP_AGENT_TOKEN_FILE or ODOP_AGENT_TOKEN: the agents' bearer token is required while ${SOURCES.ingestPort.join(" / ")} is not 0`);
  }
  // Reconciles wait on the API server: 16 in flight kept up where 4 let 10,000 executions queue (bench/cluster).
  const workers = parse("workers", int("workers", 1, 64), "16");
  const cleanup = parse("cleanup", z.enum(["delete-on-success", "keep"], { error: "the cleanup policy is delete-on-success or keep" }), "delete-on-success");
  if (problems.length > 0) return { ok: false, problems };

  const config = ControllerConfig.safeParse({
    namespace,
    identity: env["ODOP_POD_NAME"] ?? hostname(),
    watchNamespaces,
    leaderElection,
    leaseName,
    ...(podTemplates === undefined ? {} : { podTemplates }),
    workspace: workspaceKind === "pvc" ? { kind: "pvc", claimName: claim.value } : { kind: "emptyDir" },
    httpPort,
    ingestPort,
    workers,
    cleanup,
    statePath: env["ODOP_PATH"] ?? "/var/lib/odop",
  });
  if (!config.success) return { ok: false, problems: config.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) };
  return { ok: true, config: config.data };
}
