import { describe, expect, it } from "vitest";
import { slurmClientConfig } from "../../src/cli/slurm-setup.ts";

describe("odop run --backend slurm settings", () => {
  it("takes flags over the environment, and SLURM_JWT when no file is given", () => {
    const config = slurmClientConfig({ slurmrestd: "http://head:6820", slurmUser: "alice" }, { ODOP_SLURMRESTD: "http://other:1", SLURM_JWT: "tok" });
    expect(config).toMatchObject({ endpoint: "http://head:6820", version: "auto", auth: { user: "alice", token: "tok" } });
    expect(slurmClientConfig({ slurmJwtKey: "/etc/slurm/jwt.key" }, { ODOP_SLURMRESTD: "unix:/run/slurmrestd.sock", SLURM_JWT: "ignored", ODOP_SLURM_API: "v0.0.42" })).toMatchObject({
      endpoint: "unix:/run/slurmrestd.sock",
      version: "v0.0.42",
      auth: { jwtKeyFile: "/etc/slurm/jwt.key" },
    });
  });

  it("names the flag and the fix for each problem, and never prints a token", () => {
    expect(() => slurmClientConfig({}, { SLURM_JWT: "s3cret-token" })).toThrow(/--slurmrestd \(ODOP_SLURMRESTD\): slurmrestd's address is needed for --backend slurm/);
    let message = "";
    try {
      slurmClientConfig({ slurmrestd: "ftp://x", slurmTokenFile: "relative/token", slurmApi: "v9" }, { SLURM_JWT: "s3cret-token" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/--slurmrestd \(ODOP_SLURMRESTD\): /);
    expect(message).toMatch(/--slurm-api \(ODOP_SLURM_API\): /);
    expect(message).toMatch(/--slurm-token-file \(ODOP_SLURM_TOKEN_FILE\): must be an absolute path/);
    expect(message).not.toContain("s3cret-token");
    expect(() => slurmClientConfig({ slurmrestd: "http://h:1" }, {})).toThrow(/--slurm-token-file, --slurm-jwt-key or SLURM_JWT: give exactly one of token, tokenFile or jwtKeyFile \(got none\)/);
  });
});
