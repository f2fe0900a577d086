/**
 * The fixtures are what slurmrestd documents: each one validates against its version's
 * OpenAPI document (openapi/), and the submit bodies the adapters build are the ones in
 * the fixtures and validate too.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { submitBodyDataParser, type DataParserDialect } from "../../../../src/backends/slurm/rest/data-parser.ts";
import { SLURM_API_VERSIONS, type JobSubmission, type SlurmApiVersion } from "../../../../src/backends/slurm/rest/types.ts";
import { submitBodyV0038 } from "../../../../src/backends/slurm/rest/v0038.ts";
import { DOCUMENTED, specValidator, type DocumentedVersion } from "./openapi.ts";
import { SAMPLE_SUBMISSION } from "./sample.ts";
import { FIXTURES_DIR, fixture } from "./servers.ts";

/** Which operation each fixture belongs to, and whether it is the request or the answer. */
const OPERATIONS: Readonly<Record<string, { method: string; path: string; part: "request" | "response" }>> = {
  "ping.json": { method: "GET", path: "/ping/", part: "response" },
  "submit-request.json": { method: "POST", path: "/job/submit", part: "request" },
  "submit-reply.json": { method: "POST", path: "/job/submit", part: "response" },
  "submit-error.json": { method: "POST", path: "/job/submit", part: "response" },
  "job-running.json": { method: "GET", path: "/job/{job_id}", part: "response" },
  "job-failed.json": { method: "GET", path: "/job/{job_id}", part: "response" },
  "job-timeout.json": { method: "GET", path: "/job/{job_id}", part: "response" },
  "job-unknown.json": { method: "GET", path: "/job/{job_id}", part: "response" },
  "jobs.json": { method: "GET", path: "/jobs/", part: "response" },
  "nodes.json": { method: "GET", path: "/nodes/", part: "response" },
  "cancel-reply.json": { method: "DELETE", path: "/job/{job_id}", part: "response" },
};

/** Fixtures whose operation has no response schema in the document. */
const UNDOCUMENTED: ReadonlySet<string> = new Set(["v0.0.38/cancel-reply.json"]);

function submitBody(version: SlurmApiVersion, job: JobSubmission): unknown {
  if (version === "v0.0.38") return submitBodyV0038(job);
  const dialect: DataParserDialect = { version, script: version === "v0.0.40" ? "request" : "job" };
  return submitBodyDataParser(dialect, job);
}

const MINIMAL: JobSubmission = {
  name: "odop-min",
  comment: "odop:v1 default/min",
  script: "#!/bin/sh\ntrue\n",
  workingDirectory: "/tmp",
  standardOutput: "/tmp/out",
  environment: { PATH: "/usr/bin:/bin" },
  cpusPerTask: 1,
};

describe("fixtures", () => {
  it("every version has the same set of fixtures, each with a known operation", () => {
    for (const version of SLURM_API_VERSIONS) {
      const files = readdirSync(join(FIXTURES_DIR, version)).sort();
      expect(files, version).toEqual(Object.keys(OPERATIONS).sort());
    }
  });

  describe.each(Object.keys(DOCUMENTED) as DocumentedVersion[])("%s validates against its OpenAPI document", (version) => {
    const spec = specValidator(version);
    it.each(Object.keys(OPERATIONS))("%s", (file) => {
      const { method, path, part } = OPERATIONS[file]!;
      const data = fixture(version, file);
      if (part === "request") {
        expect(spec.request(method, path, data)).toEqual([]);
        return;
      }
      const problems = spec.response(method, path, data);
      if (UNDOCUMENTED.has(`${version}/${file}`)) expect(problems).toBeUndefined();
      else expect(problems).toEqual([]);
    });

    it("the validator does reject what the document rules out", () => {
      const body = structuredClone(fixture(version, "submit-request.json")) as { job: { environment: unknown; cpus_per_task: unknown } };
      body.job.environment = version === "v0.0.38" ? ["PATH=/bin"] : { PATH: "/bin" };
      body.job.cpus_per_task = "4";
      expect(spec.request("POST", "/job/submit", body)).toHaveLength(2);
    });
  });
});

describe("submit bodies", () => {
  it.each(SLURM_API_VERSIONS)("%s: the adapter builds submit-request.json from SAMPLE_SUBMISSION", (version) => {
    expect(submitBody(version, SAMPLE_SUBMISSION)).toEqual(fixture(version, "submit-request.json"));
  });

  it.each(Object.keys(DOCUMENTED) as DocumentedVersion[])("%s: bodies for a full and a minimal submission validate", (version) => {
    const spec = specValidator(version);
    for (const job of [SAMPLE_SUBMISSION, MINIMAL, { ...MINIMAL, standardError: "/tmp/err", account: "hpc", qos: "low" }]) {
      expect(spec.request("POST", "/job/submit", submitBody(version, job)), job.name).toEqual([]);
    }
  });

  it("v0.0.38 sends the environment as an object, later versions as K=V strings, v0.0.41 on with job.script", () => {
    const v38 = submitBody("v0.0.38", MINIMAL) as { script: string; job: Record<string, unknown> };
    expect(v38.script).toBe(MINIMAL.script);
    expect(v38.job["environment"]).toEqual({ PATH: "/usr/bin:/bin" });
    const v40 = submitBody("v0.0.40", MINIMAL) as { script?: string; job: Record<string, unknown> };
    expect(v40.script).toBe(MINIMAL.script);
    expect(v40.job["script"]).toBeUndefined();
    expect(v40.job["environment"]).toEqual(["PATH=/usr/bin:/bin"]);
    for (const version of ["v0.0.41", "v0.0.42", "v0.0.44"] as const) {
      const body = submitBody(version, SAMPLE_SUBMISSION) as { script?: string; job: Record<string, unknown> };
      expect(body.script, version).toBeUndefined();
      expect(body.job["script"], version).toBe(SAMPLE_SUBMISSION.script);
      expect(body.job["time_limit"], version).toEqual({ set: true, infinite: false, number: 30 });
      expect(body.job["memory_per_node"], version).toEqual({ set: true, infinite: false, number: 2048 });
      expect(body.job["required_nodes"], version).toEqual(["node12"]);
    }
  });

  it.each(SLURM_API_VERSIONS)("%s: refuses what the wire cannot carry, naming the field", (version) => {
    expect(() => submitBody(version, { ...MINIMAL, environment: { "A=B": "c" } })).toThrow(/environment name "A=B"/);
    expect(() => submitBody(version, { ...MINIMAL, cpusPerTask: 0 })).toThrow(/cpusPerTask must be a whole number ≥ 1/);
    expect(() => submitBody(version, { ...MINIMAL, timeLimitMinutes: 1.5 })).toThrow(/timeLimitMinutes/);
  });
});
