/**
 * The pusher's wire: one push as one POST (gzipped JSON, bearer token) with node:http(s)
 * over a keep-alive agent, a whole-request timeout, a bounded answer, and one silent retry
 * when a reused keep-alive socket turns out to have been closed by the server meanwhile
 * (the race Node's documentation describes: the server's idle timeout fired while our
 * request was on its way); and the reading of the controller's answer.
 */
import { type Agent as HttpAgent, request as httpRequest } from "node:http";
import { type Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { gzipSync } from "node:zlib";
import { type AgentPush, AgentPushReply } from "../api/agent-push.ts";

/** POSTs `push` to `url`; rejects when no answer came (refused, reset, timeout). */
export function sendPush(
  url: URL,
  push: AgentPush,
  token: string,
  agent: HttpAgent | HttpsAgent,
  timeoutMs: number,
): Promise<PostAnswer> {
  const headers = {
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    "content-encoding": "gzip",
    accept: "application/json",
    "user-agent": `odop-agent/${push.agent.version}`,
  };
  const body = gzipSync(JSON.stringify(push));
  return postOnce(url, body, headers, agent, timeoutMs).catch((error: unknown) => {
    if (error instanceof StaleSocket) return postOnce(url, body, headers, agent, timeoutMs);
    throw error;
  });
}

/** The controller's reply; undefined when the answer is not an AgentPushReply. */
export function parseReply(text: string): AgentPushReply | undefined {
  try {
    const reply = AgentPushReply.safeParse(JSON.parse(text));
    return reply.success ? reply.data : undefined;
  } catch {
    return undefined;
  }
}

/** The `error` of an error answer ({"error": "..."}), else its text; at most 500 characters. */
export function errorOf(text: string): string {
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json === "object" && json !== null && "error" in json && typeof json.error === "string") return json.error.slice(0, 500);
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 500);
}

export interface PostAnswer {
  status: number;
  text: string;
}

/** Most bytes of an answer kept (a reply is a few hundred bytes; an error page may be more). */
const MAX_ANSWER = 1024 * 1024;

/** A reused keep-alive socket the server had closed: the request never reached it. */
class StaleSocket extends Error {}

function postOnce(
  url: URL,
  body: Buffer,
  headers: Record<string, string>,
  agent: HttpAgent | HttpsAgent,
  timeoutMs: number,
): Promise<PostAnswer> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(url, {
      method: "POST",
      agent,
      headers: { ...headers, "content-length": String(body.length) },
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(req.reusedSocket && error.code === "ECONNRESET" ? new StaleSocket(error.message) : error);
    });
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on("data", (chunk: Buffer) => {
        if (length < MAX_ANSWER) chunks.push(chunk);
        length += chunk.length;
      });
      res.once("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8").slice(0, MAX_ANSWER) });
      });
      res.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    req.end(body);
  });
}
