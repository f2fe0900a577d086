/** Token providers: the minted JWT checked with node:crypto on its own, renewal on an injected clock, file rotation. */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { mintedToken, mintJwt, staticToken, tokenFile } from "../../../../src/backends/slurm/rest/auth.ts";
import { closeServersAfterEach, tempDir } from "./servers.ts";

closeServersAfterEach();

/** Splits and checks a JWT without the code under test: header, payload, and whether the HS256 signature holds for `key`. */
function decode(token: string, key: Buffer): { header: unknown; payload: Record<string, unknown>; valid: boolean } {
  const parts = token.split(".");
  expect(parts).toHaveLength(3);
  const [h, p, s] = parts as [string, string, string];
  for (const part of parts) expect(part).toMatch(/^[A-Za-z0-9_-]+$/);
  const expected = createHmac("sha256", key).update(`${h}.${p}`).digest();
  const given = Buffer.from(s, "base64url");
  return {
    header: JSON.parse(Buffer.from(h, "base64url").toString("utf8")),
    payload: JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>,
    valid: given.length === expected.length && timingSafeEqual(given, expected),
  };
}

function keyFile(bytes = randomBytes(32)): { path: string; key: Buffer } {
  const path = join(tempDir(), "jwt.key");
  writeFileSync(path, bytes, { mode: 0o600 });
  return { path, key: bytes };
}

describe("mintJwt", () => {
  it("makes an HS256 JWT with the claims scontrol token writes", () => {
    const key = randomBytes(32);
    const token = mintJwt(key, { iat: 1767225600, exp: 1767227400, sun: "odop" });
    const { header, payload, valid } = decode(token, key);
    expect(header).toEqual({ alg: "HS256", typ: "JWT" });
    expect(payload).toEqual({ iat: 1767225600, exp: 1767227400, sun: "odop" });
    expect(valid).toBe(true);
    expect(decode(token, randomBytes(32)).valid).toBe(false);
  });

  it("signs with the raw key bytes, whatever they are (the key file is not text)", () => {
    const key = Buffer.from([0, 255, 10, 13, 32, 0x80]);
    expect(decode(mintJwt(key, { iat: 1, exp: 2, sun: "a" }), key).valid).toBe(true);
  });
});

describe("mintedToken", () => {
  it("mints from the key file, keeps the token, and renews it when less than 20 % of its life is left", async () => {
    const { path, key } = keyFile();
    let now = 1_767_225_600_000;
    const auth = mintedToken({ user: "odop", keyFile: path, lifespanSeconds: 1800, now: () => now });
    expect(auth.user).toBe("odop");
    const first = await auth.token();
    const claims = decode(first, key);
    expect(claims.valid).toBe(true);
    expect(claims.payload).toEqual({ iat: 1_767_225_600, exp: 1_767_225_600 + 1800, sun: "odop" });

    now += (1800 - 361) * 1000; // 361 s left: more than 20 % (360 s)
    expect(await auth.token()).toBe(first);
    now += 1000; // 360 s left
    const second = await auth.token();
    expect(second).not.toBe(first);
    expect(decode(second, key).payload).toMatchObject({ iat: 1_767_225_600 + 1440, exp: 1_767_225_600 + 1440 + 1800 });
  });

  it("renews at least 60 s before expiry when 20 % is less", async () => {
    const { path } = keyFile();
    let now = 0;
    const auth = mintedToken({ user: "odop", keyFile: path, lifespanSeconds: 120, now: () => now });
    const first = await auth.token();
    now = 59_000; // 61 s left
    expect(await auth.token()).toBe(first);
    now = 60_000; // 60 s left
    expect(await auth.token()).not.toBe(first);
  });

  it("signs with the new key once the key file changes", async () => {
    const { path } = keyFile();
    const auth = mintedToken({ user: "odop", keyFile: path, now: () => 1_000_000 });
    const first = await auth.token();
    const rotated = randomBytes(32);
    writeFileSync(path, rotated);
    utimesSync(path, new Date(2_000_000), new Date(2_000_000));
    const second = await auth.token();
    expect(second).not.toBe(first);
    expect(decode(second, rotated).valid).toBe(true);
  });

  it("refuses a lifespan under a minute, and says which file it cannot read", async () => {
    expect(() => mintedToken({ user: "odop", keyFile: "/x", lifespanSeconds: 30 })).toThrow(/at least 60/);
    const missing = join(tempDir(), "absent.key");
    await expect(mintedToken({ user: "odop", keyFile: missing }).token()).rejects.toThrow(`Slurm jwt key file ${missing} cannot be read (ENOENT)`);
  });
});

describe("tokenFile", () => {
  it("reads the token, and reads it again when the file changes (a rotated Secret)", async () => {
    const path = join(tempDir(), "token");
    writeFileSync(path, "first-token\n");
    utimesSync(path, new Date(1_000_000), new Date(1_000_000));
    const auth = tokenFile("odop", path);
    expect(await auth.token()).toBe("first-token");
    writeFileSync(path, "second-token\n");
    utimesSync(path, new Date(2_000_000), new Date(2_000_000));
    expect(await auth.token()).toBe("second-token");
  });

  it("an empty or missing file is an error that names the file, not its content", async () => {
    const path = join(tempDir(), "token");
    writeFileSync(path, "  \n");
    await expect(tokenFile("odop", path).token()).rejects.toThrow(`Slurm token file ${path} is empty`);
    await expect(tokenFile("odop", `${path}.absent`).token()).rejects.toThrow(/cannot be read \(ENOENT\)/);
  });
});

describe("staticToken", () => {
  it("gives the token, trimmed; an empty one is refused", async () => {
    expect(await staticToken("odop", " abc.def.ghi\n").token()).toBe("abc.def.ghi");
    expect(() => staticToken("odop", "")).toThrow("Slurm token for user odop is empty");
  });
});
