import { createHmac, timingSafeEqual } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StagingError } from "../../src/staging/errors.ts";
import { loadNotifyKey, type NotificationPayload, sendNotification, signNotification } from "../../src/staging/notify.ts";
import { cleanupScratch, FAST, scratchDir, startServer, type Received, type TestServer } from "./helpers.ts";

let servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers) await s.close();
  servers = [];
  await cleanupScratch();
});

const KEY = "correct horse battery staple";
const NOW_MS = 1_767_225_600_500; // 2026-01-01T00:00:00.5Z

const payload: NotificationPayload = {
  event: "finished",
  execution: { name: "compress-7f3a", namespace: "science", executionId: "3f2c1a9e-7b1d-4c55-9a65-0d3b1f0c2e7a", task: "compress" },
  phase: "Succeeded",
  reason: "Completed",
  startedAt: "2026-01-01T00:00:00Z",
  finishedAt: "2026-01-01T00:05:00Z",
  outputs: ["/archive/run1/result.bin"],
};

/** What a receiver does, written here with node:crypto and nothing of odop's. */
function verifies(req: Received, key: string): boolean {
  const timestamp = req.headers["x-odop-timestamp"];
  const signature = req.headers["x-odop-signature"];
  if (typeof timestamp !== "string" || typeof signature !== "string" || !signature.startsWith("sha256=")) return false;
  const expected = createHmac("sha256", key).update(`${timestamp}.`).update(req.body).digest();
  const given = Buffer.from(signature.slice("sha256=".length), "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function server(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

describe("signNotification", () => {
  it("is HMAC-SHA256 over '<timestamp>.<body>' in hex (vector from openssl dgst -sha256 -hmac k)", () => {
    expect(signNotification('{"a":1}', "k", 1_700_000_000)).toBe("1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3");
  });
});

describe("sendNotification", () => {
  it("POSTs the payload as JSON with a timestamp and a signature the receiver verifies", async () => {
    const s = await server((req, res) => {
      res.writeHead(verifies(req, KEY) ? 204 : 401);
      res.end();
    });
    await sendNotification(`${s.base}/hooks/odop`, payload, KEY, { ...FAST, now: () => NOW_MS });
    expect(s.requests).toHaveLength(1);
    const req = s.requests[0]!;
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/hooks/odop");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers["x-odop-timestamp"]).toBe("1767225600");
    expect(JSON.parse(req.body.toString())).toEqual(payload);
  });

  it("fails without retrying when the receiver holds another key and answers 401", async () => {
    const s = await server((req, res) => {
      res.writeHead(verifies(req, "another key") ? 204 : 401);
      res.end("bad signature");
    });
    const error = await sendNotification(`${s.base}/h`, payload, KEY, FAST).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StagingError);
    expect(error).toMatchObject({ reason: "Http", transient: false });
    expect(s.requests).toHaveLength(1);
  });

  it("sends no signature without a key", async () => {
    const s = await server((_req, res) => res.end());
    await sendNotification(`${s.base}/h`, payload, undefined, FAST);
    expect(s.requests[0]!.headers["x-odop-signature"]).toBeUndefined();
    expect(s.requests[0]!.headers["x-odop-timestamp"]).toMatch(/^\d+$/);
  });

  it("retries a 502, signing each attempt afresh under one delivery id", async () => {
    let clock = NOW_MS;
    const s = await server((req, res, n) => {
      clock += 5_000;
      res.writeHead(n === 1 ? 502 : verifies(req, KEY) ? 200 : 401);
      res.end();
    });
    await sendNotification(`${s.base}/h`, payload, KEY, { ...FAST, now: () => clock });
    expect(s.requests).toHaveLength(2);
    const [a, b] = s.requests;
    expect(a!.headers["x-odop-delivery"]).toBe(b!.headers["x-odop-delivery"]);
    expect(a!.headers["x-odop-timestamp"]).not.toBe(b!.headers["x-odop-timestamp"]);
    expect(verifies(a!, KEY) && verifies(b!, KEY)).toBe(true);
  });

  it("refuses a payload outside the schema before sending it", async () => {
    const s = await server((_req, res) => res.end());
    const bad = { ...payload, phase: "Done" } as unknown as NotificationPayload;
    await expect(sendNotification(`${s.base}/h`, bad, KEY, FAST)).rejects.toThrow(/phase/);
    expect(s.requests).toHaveLength(0);
  });
});

describe("loadNotifyKey", () => {
  it("takes ODOP_NOTIFY_KEY first, then the file, trimmed; undefined when neither", async () => {
    const dir = await scratchDir();
    const file = join(dir, "key");
    await writeFile(file, "  from-file\n");
    expect(await loadNotifyKey({ env: { ODOP_NOTIFY_KEY: "from-env" }, file })).toBe("from-env");
    expect(await loadNotifyKey({ env: { ODOP_NOTIFY_KEY: "  " }, file })).toBe("from-file");
    expect(await loadNotifyKey({ env: {}, file })).toBe("from-file");
    expect(await loadNotifyKey({ env: {} })).toBeUndefined();
    expect(await loadNotifyKey({})).toBeUndefined();
  });

  it("refuses a key file that is missing or blank rather than sending unsigned", async () => {
    const dir = await scratchDir();
    await writeFile(join(dir, "blank"), "\n\n");
    await expect(loadNotifyKey({ file: join(dir, "blank") })).rejects.toThrow(/is empty/);
    await expect(loadNotifyKey({ file: join(dir, "absent") })).rejects.toThrow(/cannot read the notification key file/);
  });
});
