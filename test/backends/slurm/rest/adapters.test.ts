/**
 * Each API version's adapter against a stand-in slurmrestd that serves that version's
 * fixtures: what the adapter sends, and what it makes of the answers (sample.ts).
 */
import { describe, expect, it, vi } from "vitest";
import { staticToken } from "../../../../src/backends/slurm/rest/auth.ts";
import { createSlurmApi, type SlurmClient } from "../../../../src/backends/slurm/rest/client.ts";
import { SlurmApiError, SlurmReplyError, SlurmUnreachableError } from "../../../../src/backends/slurm/rest/errors.ts";
import { SLURM_API_VERSIONS, type SlurmApiVersion } from "../../../../src/backends/slurm/rest/types.ts";
import { expectedJobs, FAILED, NODES, RELEASES, RUNNING, SAMPLE_SUBMISSION, SUBMITTED_JOB_ID, TIMED_OUT } from "./sample.ts";
import { closeServersAfterEach, FAST_RETRY, fixture, reply, startSlurmrestd, type FakeSlurmrestd, type Handler } from "./servers.ts";

closeServersAfterEach();

/** The status Slurm answers "unknown job" with: 500 in 22.05, 404 once operations.c maps ESLURM_INVALID_JOB_ID. */
const unknownJobStatus = (version: SlurmApiVersion) => (version === "v0.0.38" ? 500 : 404);

function fixtureServer(version: SlurmApiVersion, override?: Handler): Promise<FakeSlurmrestd> {
  const base = `/slurm/${version}`;
  const routes: Record<string, [number, string]> = {
    [`GET ${base}/ping/`]: [200, "ping.json"],
    [`POST ${base}/job/submit`]: [200, "submit-reply.json"],
    [`GET ${base}/job/101`]: [200, "job-running.json"],
    [`GET ${base}/job/102`]: [200, "job-failed.json"],
    [`GET ${base}/job/103`]: [200, "job-timeout.json"],
    [`GET ${base}/job/999`]: [unknownJobStatus(version), "job-unknown.json"],
    [`GET ${base}/jobs/`]: [200, "jobs.json"],
    [`GET ${base}/nodes/`]: [200, "nodes.json"],
  };
  return startSlurmrestd((req, res) => {
    if (override !== undefined && !res.headersSent) {
      override(req, res);
      if (res.headersSent) return;
    }
    const path = new URL(req.url, "http://x").pathname;
    if (req.method === "DELETE" && path.startsWith(`${base}/job/`)) return reply(res, 200, fixture(version, "cancel-reply.json"));
    const route = routes[`${req.method} ${path}`];
    if (route === undefined) return reply(res, 404, "Unable find requested URL. Please view /openapi/v3 for API reference.");
    reply(res, route[0], fixture(version, route[1]));
  });
}

async function client(server: FakeSlurmrestd, version: SlurmApiVersion): Promise<SlurmClient> {
  const api = await createSlurmApi({ endpoint: server.endpoint, auth: staticToken("odop", "t0ken-abcdefgh"), version, retry: FAST_RETRY });
  return api;
}

describe.each(SLURM_API_VERSIONS)("%s adapter", (version) => {
  it("pings, and reads the Slurm release", async () => {
    const api = await client(await fixtureServer(version), version);
    expect(api.version).toBe(version);
    expect(await api.ping()).toEqual({ release: RELEASES[version] });
    api.close();
  });

  it("submits the body of submit-request.json and returns the job id", async () => {
    const server = await fixtureServer(version);
    const api = await client(server, version);
    expect(await api.submit(SAMPLE_SUBMISSION)).toEqual({ jobId: SUBMITTED_JOB_ID });
    const post = server.seen.find((s) => s.method === "POST");
    expect(post?.url).toBe(`/slurm/${version}/job/submit`);
    expect(post?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(post?.body ?? "")).toEqual(fixture(version, "submit-request.json"));
    api.close();
  });

  it("reads one job: running, failed, timed out, unknown", async () => {
    const api = await client(await fixtureServer(version), version);
    expect(await api.job(101)).toEqual(RUNNING);
    expect(await api.job(102)).toEqual(FAILED);
    expect(await api.job(103)).toEqual(TIMED_OUT);
    expect(await api.job(999)).toBeUndefined();
    api.close();
  });

  it("reads all jobs", async () => {
    const api = await client(await fixtureServer(version), version);
    expect(await api.jobs()).toEqual(expectedJobs(version));
    api.close();
  });

  it("reads the nodes", async () => {
    const api = await client(await fixtureServer(version), version);
    expect(await api.nodes()).toEqual(NODES);
    api.close();
  });

  it("signals the steps and cancels the job with DELETE …/job/{id}", async () => {
    const server = await fixtureServer(version);
    const api = await client(server, version);
    await api.signal(105, "SIGSTOP");
    await api.signal(105, "SIGCONT");
    await api.cancel(105);
    const deletes = server.seen.filter((s) => s.method === "DELETE").map((s) => s.url);
    const base = `/slurm/${version}/job/105`;
    expect(deletes).toEqual(
      version === "v0.0.38"
        ? [`${base}?signal=STOP`, `${base}?signal=CONT`, `${base}?signal=KILL`]
        : [`${base}?signal=SIGSTOP&flags=FULL_STEPS_ONLY`, `${base}?signal=SIGCONT&flags=FULL_STEPS_ONLY`, `${base}?signal=SIGKILL`],
    );
    api.close();
  });

  it("a refused submit is a SlurmApiError quoting Slurm, sent once", async () => {
    const server = await fixtureServer(version, (req, res) => {
      if (req.method === "POST") reply(res, 500, fixture(version, "submit-error.json"));
    });
    const api = await client(server, version);
    const error: unknown = await api.submit(SAMPLE_SUBMISSION).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmApiError);
    expect((error as SlurmApiError).transient).toBe(false);
    expect((error as Error).message).toMatch(new RegExp(`^slurmrestd POST /slurm/${version.replaceAll(".", "\\.")}/job/submit: 500 Invalid node name specified.*\\(error 2018\\)$`));
    expect(server.seen.filter((s) => s.method === "POST")).toHaveLength(1);
    api.close();
  });

  it("a submit answered with a job id and errors[] (accepted, e.g. held) returns the job id and logs the errors", async () => {
    const held = { job_id: 108, errors: [{ error_code: 2042, error: "Job is held" }] };
    const server = await fixtureServer(version, (req, res) => {
      if (req.method === "POST") reply(res, version === "v0.0.38" ? 200 : 500, held);
    });
    const warn = vi.fn();
    const api = await createSlurmApi({ endpoint: server.endpoint, auth: staticToken("odop", "t0ken-abcdefgh"), version, log: { debug: () => undefined, warn } });
    expect(await api.submit(SAMPLE_SUBMISSION)).toEqual({ jobId: 108 });
    expect(warn).toHaveBeenCalledWith(
      { path: `/slurm/${version}/job/submit`, jobId: 108, errors: [{ error: "Job is held", error_number: 2042, description: "", source: "" }] },
      "slurmrestd submitted the job but reported errors",
    );
    api.close();
  });

  it("cancelling a job slurmctld no longer knows is no error; signalling it is", async () => {
    const unknown = { errors: [{ description: "unable to kill JobId=999", error_number: 2017, error: "Invalid job id specified", source: "slurm_kill_job" }] };
    const server = await fixtureServer(version, (req, res) => {
      if (req.method === "DELETE") reply(res, 500, unknown);
    });
    const api = await client(server, version);
    await api.cancel(999);
    await expect(api.signal(999, "SIGSTOP")).rejects.toThrow(/Invalid job id specified: unable to kill JobId=999 \(error 2017\)/);
    api.close();
  });

  it("a reply of the wrong shape is a SlurmReplyError naming the field and the version", async () => {
    const server = await fixtureServer(version, (req, res) => {
      if (req.url.endsWith("/jobs/")) {
        const jobs = structuredClone(fixture(version, "jobs.json")) as { jobs: Record<string, unknown>[] };
        jobs.jobs[1]!["job_id"] = "104";
        reply(res, 200, jobs);
      }
    });
    const api = await client(server, version);
    const error: unknown = await api.jobs().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmReplyError);
    expect((error as Error).message).toContain(`does not match openapi ${version}: jobs[1].job_id: Invalid input: expected number, received string`);
    api.close();
  });

  it("no controller answering the ping is SlurmUnreachableError", async () => {
    const server = await fixtureServer(version, (req, res) => {
      if (!req.url.includes("/ping")) return;
      const ping = structuredClone(fixture(version, "ping.json")) as { pings: Record<string, unknown>[] };
      for (const p of ping.pings) {
        if ("ping" in p) p["ping"] = "DOWN";
        if ("pinged" in p) p["pinged"] = "DOWN";
        if ("responding" in p) p["responding"] = false;
      }
      reply(res, 200, ping);
    });
    const api = await client(server, version);
    const error: unknown = await api.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmUnreachableError);
    expect((error as Error).message).toMatch(/slurmctld not responding \(ctl/);
    api.close();
  });
});

describe("v0.0.38 as Slurm 22.05 writes it", () => {
  it("takes null for unset strings and numbers, and NO_VAL for free memory and load", async () => {
    const job = { ...(fixture("v0.0.38", "job-running.json") as { jobs: Record<string, unknown>[] }).jobs[0], comment: null, user_name: null, exit_code: null };
    const node = { ...(fixture("v0.0.38", "nodes.json") as { nodes: Record<string, unknown>[] }).nodes[1], reason: null, free_memory: "NO_VAL64", cpu_load: 4294967294, partitions: null };
    const server = await startSlurmrestd((req, res) => {
      if (req.url.includes("/job/")) return reply(res, 200, { meta: { Slurm: { release: "22.05.8", version: { major: 22, micro: 8, minor: 5 } } }, errors: [], jobs: [job] });
      // NO_VAL64 as 22.05 prints it: an unsigned 64-bit integer no JavaScript number holds exactly.
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [], nodes: [node] }).replace('"NO_VAL64"', "18446744073709551614"));
    });
    const api = await client(server, "v0.0.38");
    const { userName: _u, ...withoutUser } = RUNNING;
    expect(await api.job(101)).toEqual({ ...withoutUser, comment: "" });
    expect(await api.nodes()).toEqual([{ name: "node13", state: ["IDLE", "DRAIN"], cpus: 16, allocatedCpus: 0, realMemoryMiB: 64000, allocatedMemoryMiB: 0, partitions: [] }]);
    api.close();
  });
});

describe("data_parser DELETE status[] (v0.0.42 on)", () => {
  const status = (code: number, text: string) => ({ status: [{ error: { string: text, code, message: text }, step_id: "105", job_id: { set: true, infinite: false, number: 105 }, federation: { sibling: "" } }], errors: [], warnings: [] });

  it("a job already done is no error to signal or cancel; an unknown one only to cancel", async () => {
    let answer = status(2021, "Job/step already completing or completed");
    const server = await startSlurmrestd((_req, res) => reply(res, 200, answer));
    const api = await client(server, "v0.0.42");
    await api.signal(105, "SIGSTOP");
    await api.cancel(105);
    answer = status(2017, "Invalid job id specified");
    await api.cancel(105);
    const error: unknown = await api.signal(105, "SIGCONT").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlurmApiError);
    expect((error as Error).message).toBe("slurmrestd DELETE /slurm/v0.0.42/job/105?signal=SIGCONT&flags=FULL_STEPS_ONLY: 200 Invalid job id specified (error 2017)");
    api.close();
  });
});
