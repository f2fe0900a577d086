/**
 * The controller's side of the node agent's freezer API: pausing a stage pod's container
 * freezes its cgroup (cgroup v2 `cgroup.freeze`) on its node, resuming thaws it. There is
 * no pods/exec and no signal: a frozen container holds its memory but no CPU, and the
 * kubelet sees it as running.
 *
 * Protocol (the agent implements it; `odop agent`, a later issue):
 *
 *   POST <url(node)>/v1/freeze   {"pod": "<pod uid>", "container": "<name>"}
 *   POST <url(node)>/v1/thaw     {"pod": "<pod uid>", "container": "<name>", "cpuset": "0-3"}
 *   Authorization: Bearer <token>, Content-Type: application/json
 *
 *   200 {"state": "frozen" | "thawed"}   done (also when it already was)
 *   4xx/5xx {"error": "<why>"}           refused or failed; the body may be anything
 *
 * `cpuset` on thaw is odop's new choice of cores; the agent applies it to the container's
 * cgroup where it can (not where the kubelet's static CPU manager owns the cpuset) and
 * says so in its log. Errors name the node, the pod and the container, never the token.
 */
import { z } from "zod";

export interface AgentClient {
  /** Freezes `container` of the pod with uid `podUid` on `node`; freezing a frozen one is no error. */
  freeze(node: string, podUid: string, container: string): Promise<void>;
  /** Thaws it, after moving it to `cpuset` (a cpuset list) when given. */
  thaw(node: string, podUid: string, container: string, cpuset?: string): Promise<void>;
}

/** The agent's answer to a freeze or thaw. */
export const AgentReply = z.object({ state: z.enum(["frozen", "thawed"]) });
export type AgentReply = z.infer<typeof AgentReply>;

const AgentErrorBody = z.object({ error: z.string() });

/** A freeze or thaw the agent refused, failed, or never answered. */
export class AgentError extends Error {
  override name = "AgentError";
  readonly node: string;
  /** HTTP status; undefined when no answer came (refused connection, timeout). */
  readonly status: number | undefined;
  /** Whether the same request may succeed later: no answer, 429 or 5xx. */
  readonly transient: boolean;
  constructor(node: string, message: string, status: number | undefined, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.node = node;
    this.status = status;
    this.transient = status === undefined || status === 429 || status >= 500;
  }
}

export type HttpAgentClientOptions = {
  /** The agent's base URL on a node, e.g. (node) => `https://${node}:9443`. */
  url: (node: string) => string;
  /** Bearer token (from a Secret); a function is asked on every request, so a rotated token is picked up. */
  token: string | (() => string);
  /** Per request; default 10 s. */
  timeoutMs?: number;
};

export function httpAgentClient(options: HttpAgentClientOptions): AgentClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const token = typeof options.token === "function" ? options.token : () => options.token as string;

  async function call(action: "freeze" | "thaw", node: string, body: { pod: string; container: string; cpuset?: string }): Promise<AgentReply> {
    const what = `node agent on ${node}: ${action} container ${body.container} of pod ${body.pod}`;
    let url: URL;
    try {
      url = new URL(`/v1/${action}`, options.url(node));
    } catch (error) {
      throw new AgentError(node, `${what}: bad agent URL: ${messageOf(error)}`, undefined, error);
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${token()}`, "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      const why = timedOut ? `no answer within ${timeoutMs} ms` : `not reachable at ${url.origin}: ${messageOf(error)}`;
      throw new AgentError(node, `${what}: ${why}`, undefined, error);
    }
    const text = await response.text().catch(() => "");
    if (!response.ok) {
      const detail = errorDetail(text);
      const auth = response.status === 401 || response.status === 403 ? " (is the agent token right?)" : "";
      throw new AgentError(node, `${what}: HTTP ${response.status}${auth}${detail === "" ? "" : `: ${detail}`}`, response.status);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AgentError(node, `${what}: the answer is not JSON: ${truncate(text)}`, response.status);
    }
    const reply = AgentReply.safeParse(json);
    if (!reply.success) throw new AgentError(node, `${what}: unexpected answer ${truncate(text)}`, response.status);
    return reply.data;
  }

  return {
    async freeze(node, podUid, container) {
      const reply = await call("freeze", node, { pod: podUid, container });
      if (reply.state !== "frozen") throw new AgentError(node, `node agent on ${node}: freeze container ${container} of pod ${podUid}: agent says ${reply.state}`, 200);
    },
    async thaw(node, podUid, container, cpuset) {
      const reply = await call("thaw", node, { pod: podUid, container, ...(cpuset === undefined ? {} : { cpuset }) });
      if (reply.state !== "thawed") throw new AgentError(node, `node agent on ${node}: thaw container ${container} of pod ${podUid}: agent says ${reply.state}`, 200);
    },
  };
}

function errorDetail(text: string): string {
  try {
    const parsed = AgentErrorBody.safeParse(JSON.parse(text));
    if (parsed.success) return truncate(parsed.data.error);
  } catch {
    // not JSON: show the text itself
  }
  return truncate(text.trim());
}

function truncate(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
