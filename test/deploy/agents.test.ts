/** deploy/agents.yaml and the controller's side of the agents, and what `odop agent` and `odop controller` make of them. */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { agentOptionsFrom, type AgentFlags } from "../../src/cli/agent.ts";
import { loadControllerConfig } from "../../src/cli/controller-config.ts";
import { agentManifests } from "../../src/deploy/agents.ts";
import { AGENT_TOKEN_SECRET, CHART_DEFAULTS, controllerManifests, DEFAULTS, INGEST_SERVICE, NAMESPACE } from "../../src/deploy/controller.ts";
import { expectIngest, expectNoIngest, expectSafeAgents } from "./agent-checks.ts";
import { ROOT } from "./tools.ts";

const docs = (path: string): any[] =>
  parseAllDocuments(readFileSync(join(ROOT, path), "utf8"))
    .map((d) => d.toJS())
    .filter((d) => d !== null);

const agents = docs("deploy/agents.yaml");
const controller = docs("deploy/controller.yaml");
const daemonSet = agents.find((m) => m.kind === "DaemonSet");
const agentContainer = daemonSet.spec.template.spec.containers[0];
const controllerContainer = controller.find((m) => m.kind === "Deployment").spec.template.spec.containers[0];

/** The flags of an `odop agent` argument list, as commander hands them to agentCommand. */
function agentFlags(args: readonly string[]): AgentFlags {
  const valued: Record<string, keyof AgentFlags> = { "--controller": "controller", "--interval": "interval", "--freezer-listen": "freezerListen", "--node": "node" };
  const flags: AgentFlags = { interval: "1s" };
  expect(args[0]).toBe("agent");
  for (let i = 1; i < args.length; i += 1) {
    const arg = args[i]!;
    if (arg === "--main-kubernetes-pods") flags.mainKubernetesPods = true;
    else if (valued[arg] !== undefined) (flags as Record<string, unknown>)[valued[arg]] = args[++i];
    else throw new Error(`the test does not know ${arg}`);
  }
  return flags;
}

/** What the kubelet puts in for the downward API fields the manifests use. */
const FIELDS: Record<string, string> = { "metadata.namespace": "odop-system", "metadata.name": "odop-controller-7d9f-x2k4q", "spec.nodeName": "cn042" };

/** A container's environment as the kubelet would hand it over: downward API and Secrets with stand-in values. */
function resolvedEnv(container: any): Record<string, string> {
  return Object.fromEntries(
    container.env.map((e: any) => {
      const field = e.valueFrom?.fieldRef?.fieldPath as string | undefined;
      const value = e.value ?? (e.valueFrom.secretKeyRef !== undefined ? "a-token" : FIELDS[field!]);
      expect(value, e.name).toBeDefined();
      return [e.name, value];
    }),
  );
}

describe("deploy/agents.yaml", () => {
  it("holds the agents' Namespace (Pod Security privileged), ServiceAccount and DaemonSet, and is what src/deploy generates", () => {
    expect(agents.map((m) => m.kind)).toEqual(["Namespace", "ServiceAccount", "DaemonSet"]);
    expect(agents).toEqual(JSON.parse(JSON.stringify(agentManifests())));
    const namespace = agents[0];
    expect(namespace.metadata.name).toBe("odop-agents");
    expect(namespace.metadata.name).not.toBe(NAMESPACE);
    expect(namespace.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    for (const m of agents.slice(1)) expect(m.metadata.namespace).toBe("odop-agents");
  });

  it("never mounts an API token, is never privileged, tolerates every taint and reads its token from the Secret", () => {
    expectSafeAgents(agents, AGENT_TOKEN_SECRET);
  });

  it("runs the controller's image and pushes to the controller's agents Service", () => {
    const deployment = controller.find((m) => m.kind === "Deployment");
    expect(agentContainer.image).toBe(controllerContainer.image);
    const service = controller.find((m) => m.kind === "Service" && m.metadata.name === INGEST_SERVICE);
    expect(service.spec).toMatchObject({ type: "ClusterIP", ports: [{ name: "agents", port: 8470, targetPort: "agents", protocol: "TCP" }] });
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    const url = agentContainer.args[agentContainer.args.indexOf("--controller") + 1];
    expect(url).toBe(`http://${service.metadata.name}.${service.metadata.namespace}.svc:${service.spec.ports[0].port}`);
  });

  it("gives `odop agent` flags and variables it accepts, and the freezer the port the controller calls", () => {
    const flags = agentFlags(agentContainer.args);
    const { options, problems } = agentOptionsFrom(flags, resolvedEnv(agentContainer));
    expect(problems).toEqual([]);
    expect(options).toMatchObject({ tokenFile: "/etc/odop/agent-token/token", node: "cn042", main: { kubernetesPods: true }, freezer: { listen: "0.0.0.0:9180" } });
    expect(controllerContainer.env).toContainEqual({ name: "ODOP_AGENT_PORT", value: String(agentContainer.ports[0].hostPort) });
  });

  it("lists only flags `odop agent --help` knows", () => {
    const help = spawnSync(process.execPath, [join(ROOT, "src/cli/odop.ts"), "agent", "--help"], { encoding: "utf8" });
    expect(help.status, help.stderr).toBe(0);
    for (const flag of agentContainer.args.filter((a: string) => a.startsWith("--"))) expect(help.stdout).toContain(flag);
  });
});

describe("the controller with agents (deploy/controller.yaml)", () => {
  it("takes pushes on 8470 and calls freezers on 9180, with the token from the Secret", () => {
    expectIngest(controllerContainer, AGENT_TOKEN_SECRET);
  });

  it("gives `odop controller` an ingest configuration it accepts", () => {
    const loaded = loadControllerConfig(resolvedEnv(controllerContainer), {});
    expect(loaded.ok ? [] : loaded.problems).toEqual([]);
    expect(loaded.ok && loaded.config.ingestPort).toBe(8470);
    // The freezer's port and token are read where the backend is made (src/cli/controller.ts).
    const source = readFileSync(join(ROOT, "src/cli/controller.ts"), "utf8");
    expect(source).toContain('process.env["ODOP_AGENT_PORT"]');
    expect(source).toContain('process.env["ODOP_AGENT_TOKEN"]');
  });

  it("has no ingest, no agents Service and no agents without them", () => {
    const manifests = controllerManifests(CHART_DEFAULTS);
    expectNoIngest((manifests.find((m) => m["kind"] === "Deployment") as any).spec.template.spec.containers[0]);
    expect(manifests.map((m: any) => m.metadata.name)).not.toContain(INGEST_SERVICE);
    expect(agentManifests(CHART_DEFAULTS)).toEqual([]);
  });

  it("refuses agents in the controller's own (restricted) namespace", () => {
    expect(() => agentManifests({ ...DEFAULTS, agents: { ...DEFAULTS.agents!, namespace: NAMESPACE } })).toThrow(/must not be the controller's/);
  });

  it("mounts host folders for file triggers read-only", () => {
    const [, , ds] = agentManifests({ ...DEFAULTS, agents: { ...DEFAULTS.agents!, hostPaths: ["/scratch", "/lustre/proj"] } }) as any[];
    const pod = ds.spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: "host-1", hostPath: { path: "/lustre/proj", type: "Directory" } });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: "host-1", mountPath: "/lustre/proj", readOnly: true });
    expectSafeAgents([ds, agentManifests()[1]], AGENT_TOKEN_SECRET);
  });
});

describe("deploy/", () => {
  it("holds no Secret: the token is created by hand, never committed", () => {
    for (const file of readdirSync(join(ROOT, "deploy")).filter((f) => f.endsWith(".yaml"))) {
      expect(docs(`deploy/${file}`).map((m) => m.kind), file).not.toContain("Secret");
    }
  });
});
