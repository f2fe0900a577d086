/** The HTTP client of the node agent's freezer API against a real node:http server on 127.0.0.1. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { AgentError, httpAgentClient } from "../../../src/backends/kubernetes/agent-client.ts";

type Seen = { method: string; path: string; authorization: string | undefined; contentType: string | undefined; body: unknown };
type Answer = (req: Seen, res: ServerResponse) => void;

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

/** An agent that checks the bearer token, then answers with `answer`. */
async function agent(answer: Answer, token = "s3cret"): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const s: Seen = { method: req.method ?? "", path: req.url ?? "", authorization: req.headers.authorization, contentType: req.headers["content-type"], body: text === "" ? undefined : JSON.parse(text) };
      seen.push(s);
      if (s.authorization !== `Bearer ${token}`) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: "bad token" }));
        return;
      }
      answer(s, res);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { url: `http://127.0.0.1:${address.port}`, seen };
}

const reply = (code: number, body: unknown) => (_req: Seen, res: ServerResponse) => {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
};

describe("httpAgentClient", () => {
  it("POSTs freeze and thaw with the bearer token and the {pod, container, cpuset} body", async () => {
    const { url, seen } = await agent((req, res) => reply(200, { state: req.path === "/v1/freeze" ? "frozen" : "thawed" })(req, res));
    const nodes: string[] = [];
    const client = httpAgentClient({ url: (node) => (nodes.push(node), url), token: () => "s3cret" });
    await client.freeze("cn042", "uid-1", "run");
    await client.thaw("cn042", "uid-1", "run", "4-5");
    await client.thaw("cn042", "uid-1", "run");
    expect(nodes).toEqual(["cn042", "cn042", "cn042"]);
    expect(seen).toEqual([
      { method: "POST", path: "/v1/freeze", authorization: "Bearer s3cret", contentType: "application/json", body: { pod: "uid-1", container: "run" } },
      { method: "POST", path: "/v1/thaw", authorization: "Bearer s3cret", contentType: "application/json", body: { pod: "uid-1", container: "run", cpuset: "4-5" } },
      { method: "POST", path: "/v1/thaw", authorization: "Bearer s3cret", contentType: "application/json", body: { pod: "uid-1", container: "run" } },
    ]);
  });

  it.each<[string, Answer, RegExp, boolean]>([
    ["a wrong token (401)", reply(200, { state: "frozen" }), /^node agent on cn042: freeze container run of pod uid-1: HTTP 401 \(is the agent token right\?\): bad token$/, false],
    ["an agent failure (500)", reply(500, { error: "cgroup.freeze: no such file" }), /^node agent on cn042: .*HTTP 500: cgroup.freeze: no such file$/, true],
    ["a reply that is not JSON", reply(200, "<html>"), /node agent on cn042: .*not JSON: <html>/, false],
    ["a reply of the wrong shape", reply(200, { frozen: true }), /node agent on cn042: .*unexpected answer/, false],
    ["the other state", reply(200, { state: "thawed" }), /node agent on cn042: .*agent says thawed/, false],
  ])("names the node and the failure: %s", async (_name, answer, message, transient) => {
    const { url } = await agent(answer);
    const client = httpAgentClient({ url: () => url, token: _name.startsWith("a wrong token") ? "wrong" : "s3cret" });
    const error = await client.freeze("cn042", "uid-1", "run").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentError);
    expect((error as AgentError).message).toMatch(message);
    expect((error as AgentError).message).not.toContain("s3cret");
    expect((error as AgentError).node).toBe("cn042");
    expect((error as AgentError).transient).toBe(transient);
  });

  it("gives up on an agent that does not answer, and on one that is not there", async () => {
    const { url } = await agent(() => undefined);
    const silent = await httpAgentClient({ url: () => url, token: "s3cret", timeoutMs: 50 }).freeze("cn042", "uid-1", "run").catch((e: unknown) => e);
    expect((silent as AgentError).message).toMatch(/^node agent on cn042: .*no answer within 50 ms$/);
    expect((silent as AgentError).transient).toBe(true);
    const closed = await httpAgentClient({ url: () => "http://127.0.0.1:1", token: "s3cret" }).thaw("cn007", "uid-1", "run").catch((e: unknown) => e);
    expect((closed as AgentError).message).toMatch(/^node agent on cn007: thaw container run of pod uid-1: not reachable at http:\/\/127.0.0.1:1/);
  });
});
