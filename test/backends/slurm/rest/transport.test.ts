/**
 * The transport against real HTTP servers on 127.0.0.1 and a unix socket: how answers
 * become errors, what is retried, timeouts, bounded connections, auth headers.
 */
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { staticToken } from "../../../../src/backends/slurm/rest/auth.ts";
import { SlurmApiError, SlurmReplyError, SlurmUnreachableError } from "../../../../src/backends/slurm/rest/errors.ts";
import { createTransport, endpointProblem, parseEndpoint, type SlurmLog, type TransportOptions } from "../../../../src/backends/slurm/rest/transport.ts";
import { closeServersAfterEach, reply, startSlurmrestd, tempDir, type Handler } from "./servers.ts";

closeServersAfterEach();

const TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";
const auth = staticToken("odop", TOKEN);
const noSleep = () => Promise.resolve();

async function transportTo(handler: Handler, options: Partial<TransportOptions> = {}, unix = false) {
  const server = await startSlurmrestd(handler, { unix });
  const transport = createTransport({ endpoint: server.endpoint, auth, sleep: noSleep, ...options });
  return { server, transport };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error("expected the request to fail");
  return error;
}

const GET = { method: "GET", path: "/slurm/v0.0.38/jobs/" } as const;
const POST = { method: "POST", path: "/slurm/v0.0.38/job/submit", body: { script: "#!/bin/sh\n", job: {} } } as const;

describe("answers", () => {
  it("returns the JSON body and sends the auth headers on every request", async () => {
    const { server, transport } = await transportTo((_req, res) => reply(res, 200, { errors: [], jobs: [] }));
    expect(await transport.request(GET)).toEqual({ body: { errors: [], jobs: [] }, warnings: [] });
    await transport.request(POST);
    for (const seen of server.seen) {
      expect(seen.headers["x-slurm-user-name"]).toBe("odop");
      expect(seen.headers["x-slurm-user-token"]).toBe(TOKEN);
    }
    expect(JSON.parse(server.seen[1]!.body)).toEqual(POST.body);
    transport.close();
  });

  it("HTTP 200 with a non-empty errors[] is a SlurmApiError quoting Slurm", async () => {
    const body = { errors: [{ description: "Unable to find JobId=7", error_number: 2017, error: "Invalid job id specified", source: "slurm_load_job" }] };
    const { server, transport } = await transportTo((_req, res) => reply(res, 200, body));
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmApiError);
    expect(error.message).toBe("slurmrestd GET /slurm/v0.0.38/jobs/: 200 Invalid job id specified: Unable to find JobId=7 (error 2017)");
    expect((error as SlurmApiError).errors).toEqual([{ error: "Invalid job id specified", error_number: 2017, description: "Unable to find JobId=7", source: "slurm_load_job" }]);
    expect((error as SlurmApiError).has(2017)).toBe(true);
    expect(server.seen).toHaveLength(1);
    transport.close();
  });

  it("an empty errors[] is no error, and warnings are logged, not thrown", async () => {
    const warn = vi.fn();
    const log = { debug: () => undefined, warn } as unknown as SlurmLog;
    const { transport } = await transportTo((_req, res) => reply(res, 200, { errors: [], warnings: [{ description: "No job changes since update_time", source: "_op_handler_jobs" }] }), { log });
    const answer = await transport.request(GET);
    expect(answer.warnings).toEqual([{ description: "No job changes since update_time", source: "_op_handler_jobs" }]);
    expect(warn).toHaveBeenCalledWith({ method: "GET", path: GET.path, warnings: answer.warnings }, "slurmrestd warnings");
    transport.close();
  });

  it.each([400, 404, 422])("HTTP %i is a terminal SlurmApiError, not retried", async (status) => {
    const { server, transport } = await transportTo((_req, res) => reply(res, status, status === 404 ? "Unable find requested URL. Please view /openapi/v3 for API reference." : { errors: [{ error: "Unable to parse query", error_number: 9001 }] }));
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmApiError);
    expect((error as SlurmApiError).status).toBe(status);
    expect((error as SlurmApiError).transient).toBe(false);
    expect(error.message).toMatch(status === 404 ? /: 404 Unable find requested URL/ : new RegExp(`: ${status} Unable to parse query \\(error 9001\\)`));
    expect(server.seen).toHaveLength(1);
    transport.close();
  });

  it("HTTP 401 says to check the credentials, and never shows the token even when the server echoes it", async () => {
    const { transport } = await transportTo((req, res) => reply(res, 401, `Authentication failure for token ${String(req.headers["x-slurm-user-token"])}`));
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmApiError);
    expect(error.message).toContain("401 Authentication failure for token [token] (check the Slurm user name and token)");
    expect(error.message).not.toContain(TOKEN);
    expect(JSON.stringify(error)).not.toContain(TOKEN);
    transport.close();
  });

  it("a 2xx answer that is not JSON is a SlurmReplyError", async () => {
    const { transport } = await transportTo((_req, res) => reply(res, 200, "<html>proxy</html>"));
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmReplyError);
    expect(error.message).toBe("slurmrestd GET /slurm/v0.0.38/jobs/: the reply does not match openapi v0.0.38: not JSON: <html>proxy</html>");
    transport.close();
  });
});

describe("transient failures and retries", () => {
  it.each([500, 503])("HTTP %i without Slurm errors: GET is retried a bounded number of times, then SlurmUnreachableError", async (status) => {
    const { server, transport } = await transportTo((_req, res) => reply(res, status, "upstream unavailable"), { retry: { retries: 2 } });
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmUnreachableError);
    expect(error).toMatchObject({ transient: true, reason: "SlurmUnreachable", status });
    expect(error.message).toBe(`slurmrestd GET /slurm/v0.0.38/jobs/: ${status} upstream unavailable`);
    expect(server.seen).toHaveLength(3);
    transport.close();
  });

  it("a GET that fails once and then succeeds returns the answer", async () => {
    let n = 0;
    const { server, transport } = await transportTo((_req, res) => (++n === 1 ? reply(res, 503, "busy") : reply(res, 200, { jobs: [] })));
    expect((await transport.request(GET)).body).toEqual({ jobs: [] });
    expect(server.seen).toHaveLength(2);
    transport.close();
  });

  it.each([500, 503])("HTTP %i on POST job/submit: SlurmUnreachableError at once, the server saw exactly one POST", async (status) => {
    const { server, transport } = await transportTo((_req, res) => reply(res, status, "upstream unavailable"));
    const error = await failure(transport.request(POST));
    expect(error).toBeInstanceOf(SlurmUnreachableError);
    expect(server.seen.filter((s) => s.method === "POST")).toHaveLength(1);
    transport.close();
  });

  it("DELETE (signal, cancel) is retried like GET", async () => {
    const { server, transport } = await transportTo((_req, res) => reply(res, 502, "bad gateway"), { retry: { retries: 1 } });
    await failure(transport.request({ method: "DELETE", path: "/slurm/v0.0.38/job/5", query: { signal: "STOP" } }));
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual(["DELETE /slurm/v0.0.38/job/5?signal=STOP", "DELETE /slurm/v0.0.38/job/5?signal=STOP"]);
    transport.close();
  });

  it("HTTP 500 with Slurm's own errors is terminal (22.05 answers 500 to every refusal); with communication errnos it is transient", async () => {
    const refused = { errors: [{ error_code: 2018, error: "Invalid node name specified" }] };
    const down = { errors: [{ description: "Unable to find JobId=7", error_number: 1800, error: "Unable to contact slurm controller (connect failure)", source: "slurm_load_job" }] };
    let body: unknown = refused;
    const { server, transport } = await transportTo((_req, res) => reply(res, 500, body), { retry: { retries: 1 } });
    const first = await failure(transport.request(POST));
    expect(first).toBeInstanceOf(SlurmApiError);
    expect(first.message).toBe("slurmrestd POST /slurm/v0.0.38/job/submit: 500 Invalid node name specified (error 2018)");
    body = down;
    const second = await failure(transport.request(GET));
    expect(second).toBeInstanceOf(SlurmUnreachableError);
    expect(second.message).toContain("slurmctld not reachable: 500 Unable to contact slurm controller (connect failure): Unable to find JobId=7 (error 1800)");
    expect(server.seen.map((s) => s.method)).toEqual(["POST", "GET", "GET"]);
    transport.close();
  });

  it("no answer within the timeout: SlurmUnreachableError, not retried", async () => {
    const { server, transport } = await transportTo(() => undefined, { timeoutMs: 200 });
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmUnreachableError);
    expect(error.message).toMatch(/no answer within 200 ms from http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.seen).toHaveLength(1);
    transport.close();
  });

  it("connection refused: SlurmUnreachableError naming the endpoint and ECONNREFUSED", async () => {
    const port = await freePort();
    const seen: number[] = [];
    const transport = createTransport({ endpoint: `http://127.0.0.1:${port}`, auth, retry: { retries: 2 }, sleep: (ms) => (seen.push(ms), Promise.resolve()) });
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmUnreachableError);
    expect(error.message).toMatch(new RegExp(`not reachable at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(error.message).not.toContain(TOKEN);
    expect(seen).toHaveLength(2);
    for (const [i, ms] of seen.entries()) expect(ms).toBeLessThanOrEqual(Math.min(800, 100 * 2 ** i));
    transport.close();
  });
});

describe("unix socket", () => {
  it("speaks HTTP over unix:/path", async () => {
    const { server, transport } = await transportTo((req, res) => reply(res, 200, { pings: [], path: req.url }), {}, true);
    expect(server.endpoint).toMatch(/^unix:\//);
    expect((await transport.request({ method: "GET", path: "/slurm/v0.0.38/ping/" })).body).toEqual({ pings: [], path: "/slurm/v0.0.38/ping/" });
    expect(server.seen[0]!.headers["x-slurm-user-token"]).toBe(TOKEN);
    transport.close();
  });

  it("a missing socket is SlurmUnreachableError (ENOENT)", async () => {
    const path = join(tempDir(), "absent.socket");
    const transport = createTransport({ endpoint: `unix:${path}`, auth, sleep: noSleep });
    const error = await failure(transport.request(GET));
    expect(error).toBeInstanceOf(SlurmUnreachableError);
    expect(error.message).toContain(`not reachable at unix:${path}`);
    expect(error.message).toContain("ENOENT");
    transport.close();
  });
});

describe("connections", () => {
  it.each([false, true])("50 concurrent requests use at most maxConnections sockets (unix socket: %s)", async (unix) => {
    const { server, transport } = await transportTo((_req, res) => setTimeout(() => reply(res, 200, { ok: true }), 5), { maxConnections: 4 }, unix);
    const answers = await Promise.all(Array.from({ length: 50 }, () => transport.request(GET)));
    expect(answers).toHaveLength(50);
    expect(server.seen).toHaveLength(50);
    expect(server.maxOpen()).toBeGreaterThan(0);
    expect(server.maxOpen()).toBeLessThanOrEqual(4);
    transport.close();
  });
});

describe("endpoints", () => {
  it("accepts http://host:port and unix:/absolute/path", () => {
    expect(parseEndpoint("http://127.0.0.1:6820")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 6820 });
    expect(parseEndpoint("http://[::1]:6820")).toEqual({ kind: "tcp", host: "::1", port: 6820 });
    expect(parseEndpoint("http://slurm.example")).toEqual({ kind: "tcp", host: "slurm.example", port: 80 });
    expect(parseEndpoint("unix:/run/slurmrestd/slurmrestd.socket")).toEqual({ kind: "unix", socketPath: "/run/slurmrestd/slurmrestd.socket" });
  });

  it.each([
    ["localhost:6820", /^must be http:\/\/host:port or unix:\/absolute\/path\/to\/socket/],
    ["https://slurm:6820", /^https: is not supported/],
    ["http://slurm:6820/slurm/v0.0.38", /^give no path, query or credentials/],
    ["unix:run/slurmrestd.socket", /^the socket path must be absolute/],
  ])("refuses %s", (endpoint, message) => {
    expect(endpointProblem(endpoint)).toMatch(message);
    expect(() => parseEndpoint(endpoint)).toThrow(RangeError);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
