/** PooledKubeConfig: every request of one cluster and user gets the same connection pool (client-node 2.0 makes one per request). */
import { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { PooledKubeConfig } from "../../src/store/kubernetes-config.ts";

const CONFIG = `
apiVersion: v1
kind: Config
clusters:
- {name: a, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}
- {name: b, cluster: {server: "https://127.0.0.2:6443", insecure-skip-tls-verify: true}}
users:
- {name: u, user: {token: "t0k3n"}}
contexts:
- {name: a, context: {cluster: a, user: u}}
- {name: b, context: {cluster: b, user: u}}
current-context: a
`;

async function dispatcherOf(config: KubeConfig): Promise<{ dispatcher: unknown; authorization: string | undefined }> {
  const context = new RequestContext("https://127.0.0.1:6443/api/v1/pods", HttpMethod.GET);
  await config.applySecurityAuthentication(context);
  return { dispatcher: context.getDispatcher(), authorization: context.getHeaders()["Authorization"] };
}

describe("PooledKubeConfig", () => {
  it("hands every request the same dispatcher, and still sets the token on each", async () => {
    const config = new PooledKubeConfig();
    config.loadFromString(CONFIG);
    const first = await dispatcherOf(config);
    const second = await dispatcherOf(config);
    expect(first.dispatcher).toBeDefined();
    expect(second.dispatcher).toBe(first.dispatcher);
    expect(second.authorization).toBe("Bearer t0k3n");
  });

  it("keeps one pool per cluster", async () => {
    const config = new PooledKubeConfig();
    config.loadFromString(CONFIG);
    const a = await dispatcherOf(config);
    config.setCurrentContext("b");
    const b = await dispatcherOf(config);
    expect(b.dispatcher).not.toBe(a.dispatcher);
  });

  // The reason for PooledKubeConfig: when client-node reuses its dispatcher, this fails and the class can go.
  it("is needed: client-node's own KubeConfig makes a new dispatcher for every request", async () => {
    const plain = new KubeConfig();
    plain.loadFromString(CONFIG);
    expect((await dispatcherOf(plain)).dispatcher).not.toBe((await dispatcherOf(plain)).dispatcher);
  });
});
