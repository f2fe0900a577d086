/** createSlurmApi: version discovery ("auto") against servers that serve an OpenAPI document or only ping paths. */
import { describe, expect, it } from "vitest";
import { staticToken } from "../../../../src/backends/slurm/rest/auth.ts";
import { createSlurmApi } from "../../../../src/backends/slurm/rest/client.ts";
import { versionsInDocument } from "../../../../src/backends/slurm/rest/discovery.ts";
import { SlurmApiError, SlurmUnreachableError } from "../../../../src/backends/slurm/rest/errors.ts";
import { closeServersAfterEach, FAST_RETRY, fixture, reply, startSlurmrestd } from "./servers.ts";

closeServersAfterEach();

const auth = staticToken("odop", "t0ken-abcdefgh");
const NOT_FOUND = "Unable find requested URL. Please view /openapi/v3 for API reference.";

/** A merged document as slurmrestd serves it: path keys with the version in them. */
function document(paths: string[]): unknown {
  return { openapi: "3.0.2", info: { title: "Slurm Rest API" }, paths: Object.fromEntries(paths.map((p) => [p, { get: {} }])) };
}

describe("version discovery", () => {
  it("Slurm 22.05: /openapi/v3 lists /slurm/v0.0.38/… (joined without trailing slash) → v0.0.38", async () => {
    const server = await startSlurmrestd((req, res) => {
      if (req.url === "/openapi/v3") return reply(res, 200, document(["/slurm/v0.0.38/ping", "/slurm/v0.0.38/jobs", "/slurmdb/v0.0.38/jobs", "/slurm/v0.0.37/ping", "/openapi/v3"]));
      if (req.url === "/slurm/v0.0.38/ping/") return reply(res, 200, fixture("v0.0.38", "ping.json"));
      reply(res, 404, NOT_FOUND);
    });
    const api = await createSlurmApi({ endpoint: server.endpoint, auth });
    expect(api.version).toBe("v0.0.38");
    expect(await api.ping()).toEqual({ release: "22.05.8" });
    expect(server.seen.map((s) => s.url)).toEqual(["/openapi/v3", "/slurm/v0.0.38/ping/"]);
    expect(server.seen[0]!.headers["x-slurm-user-name"]).toBe("odop");
    api.close();
  });

  it("picks the newest version both know: 24.05 serves v0.0.39–41 → v0.0.41", async () => {
    const server = await startSlurmrestd((req, res) =>
      req.url === "/openapi/v3" ? reply(res, 200, document(["/slurm/v0.0.39/ping/", "/slurm/v0.0.40/ping/", "/slurm/v0.0.41/ping/", "/slurm/v0.0.41/jobs/"])) : reply(res, 404, NOT_FOUND),
    );
    const api = await createSlurmApi({ endpoint: server.endpoint, auth, version: "auto" });
    expect(api.version).toBe("v0.0.41");
    api.close();
  });

  it("falls back to /openapi when /openapi/v3 is not there", async () => {
    const server = await startSlurmrestd((req, res) => (req.url === "/openapi" ? reply(res, 200, document(["/slurm/v0.0.42/ping/", "/slurm/v0.0.43/ping/"])) : reply(res, 404, NOT_FOUND)));
    const api = await createSlurmApi({ endpoint: server.endpoint, auth });
    expect(api.version).toBe("v0.0.42");
    expect(server.seen.map((s) => s.url)).toEqual(["/openapi/v3", "/openapi"]);
    api.close();
  });

  it("without a document, probes GET /slurm/<version>/ping/ newest first; 404 means not served", async () => {
    const server = await startSlurmrestd((req, res) => (req.url === "/slurm/v0.0.40/ping/" ? reply(res, 200, fixture("v0.0.40", "ping.json")) : reply(res, 404, NOT_FOUND)));
    const api = await createSlurmApi({ endpoint: server.endpoint, auth });
    expect(api.version).toBe("v0.0.40");
    expect(server.seen.map((s) => s.url)).toEqual(["/openapi/v3", "/openapi", "/slurm/v0.0.44/ping/", "/slurm/v0.0.42/ping/", "/slurm/v0.0.41/ping/", "/slurm/v0.0.40/ping/"]);
    api.close();
  });

  it("a server that serves no version odop speaks is a SlurmApiError that says which it serves", async () => {
    const server = await startSlurmrestd((req, res) => (req.url === "/openapi/v3" ? reply(res, 200, document(["/slurm/v0.0.39/ping/"])) : reply(res, 404, NOT_FOUND)));
    const error: unknown = await createSlurmApi({ endpoint: server.endpoint, auth }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmApiError);
    expect((error as Error).message).toMatch(/serves v0\.0\.39; odop speaks v0\.0\.44, v0\.0\.42, v0\.0\.41, v0\.0\.40, v0\.0\.38/);
  });

  it("refused credentials fail discovery instead of reading as 'not served'", async () => {
    const server = await startSlurmrestd((_req, res) => reply(res, 401, "Authentication failure"));
    const error: unknown = await createSlurmApi({ endpoint: server.endpoint, auth }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmApiError);
    expect((error as SlurmApiError).status).toBe(401);
    expect(server.seen).toHaveLength(1);
  });

  it("slurmrestd not up yet: SlurmUnreachableError (transient), after the client's few retries", async () => {
    const server = await startSlurmrestd((_req, res) => reply(res, 503, "starting"));
    const error: unknown = await createSlurmApi({ endpoint: server.endpoint, auth, retry: FAST_RETRY }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmUnreachableError);
    expect(server.seen).toHaveLength(1 + FAST_RETRY.retries);
  });

  it("an explicit version asks the server nothing up front", async () => {
    const server = await startSlurmrestd((_req, res) => reply(res, 404, NOT_FOUND));
    const api = await createSlurmApi({ endpoint: server.endpoint, auth, version: "v0.0.44" });
    expect(api.version).toBe("v0.0.44");
    expect(server.seen).toHaveLength(0);
    api.close();
  });

  it("reads versions from path keys only under /slurm/", () => {
    expect(versionsInDocument(document(["/slurm/v0.0.41/jobs/", "/slurm/v0.0.40/ping", "/slurmdb/v0.0.44/jobs/", "/slurm/v0.0.41/ping/"]))).toEqual(["v0.0.40", "v0.0.41"]);
    expect(versionsInDocument({ openapi: "3.0.2" })).toBeUndefined();
    expect(versionsInDocument("yaml")).toBeUndefined();
  });
});
