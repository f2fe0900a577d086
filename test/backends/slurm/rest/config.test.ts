/** The client's settings: defaults, and messages that name the field and the fix (never a token). */
import { describe, expect, it } from "vitest";
import { clientOptionsOf, parseSlurmClientConfig } from "../../../../src/backends/slurm/rest/config.ts";

const TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret.signature";

function problems(input: unknown): string {
  try {
    parseSlurmClientConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(RangeError);
    return (error as Error).message;
  }
  throw new Error("expected the settings to be refused");
}

describe("parseSlurmClientConfig", () => {
  it("fills in the defaults", () => {
    expect(parseSlurmClientConfig({ endpoint: "unix:/run/slurmrestd/slurmrestd.socket", auth: { user: "odop", tokenFile: "/var/run/secrets/slurm/token" } })).toEqual({
      endpoint: "unix:/run/slurmrestd/slurmrestd.socket",
      version: "auto",
      timeoutMs: 10_000,
      maxConnections: 8,
      auth: { user: "odop", tokenFile: "/var/run/secrets/slurm/token" },
    });
  });

  it("builds createSlurmApi's options", async () => {
    const options = clientOptionsOf(parseSlurmClientConfig({ endpoint: "http://127.0.0.1:6820", version: "v0.0.38", maxConnections: 2, auth: { user: "odop", token: TOKEN } }));
    expect(options).toMatchObject({ endpoint: "http://127.0.0.1:6820", version: "v0.0.38", timeoutMs: 10_000, maxConnections: 2 });
    expect(options.auth.user).toBe("odop");
    expect(await options.auth.token()).toBe(TOKEN);
  });

  it.each([
    [{ endpoint: "localhost:6820" }, "endpoint: must be http://host:port or unix:/absolute/path/to/socket (slurmrestd's listen address), e.g. http://127.0.0.1:6820 or unix:/run/slurmrestd/slurmrestd.socket"],
    [{ endpoint: "unix:slurmrestd.socket" }, "endpoint: the socket path must be absolute"],
    [{ version: "v0.0.39" }, "version: Invalid option"],
    [{ maxConnections: 500 }, "maxConnections: must be at most 64 (slurmrestd limits its connections)"],
    [{ timeoutMs: 10 }, "timeoutMs: must be at least 100 ms"],
    [{ auth: { user: "odop" } }, "auth: give exactly one of token, tokenFile or jwtKeyFile (got none)"],
    [{ auth: { user: "odop", token: TOKEN, tokenFile: "/t" } }, "auth: give exactly one of token, tokenFile or jwtKeyFile (got token and tokenFile)"],
    [{ auth: { user: "odop", token: " " } }, "auth.token: is empty (is SLURM_JWT set?)"],
    [{ auth: { user: "odop", jwtKeyFile: "jwt.key" } }, "auth.jwtKeyFile: must be an absolute path"],
    [{ auth: { user: "odop", token: TOKEN, tokenLifespanSeconds: 600 } }, "auth.tokenLifespanSeconds: only applies to tokens minted from jwtKeyFile"],
    [{ auth: { user: "", token: TOKEN } }, "auth.user: must name the Slurm user odop submits as, e.g. odop"],
    [{ auth: { user: "odop", token: TOKEN, password: TOKEN } }, "auth: Unrecognized key: \"password\""],
  ])("refuses %j", (change, message) => {
    const input = { endpoint: "http://127.0.0.1:6820", auth: { user: "odop", token: TOKEN }, ...change };
    const text = problems(input);
    expect(text).toContain(message);
    expect(text).not.toContain(TOKEN);
  });
});
