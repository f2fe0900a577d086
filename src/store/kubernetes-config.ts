/**
 * A KubeConfig whose requests share one connection pool.
 *
 * client-node 2.0 builds a new undici Agent for every request it authenticates
 * (KubeConfig.applySecurityAuthentication → createDispatcher), so no connection is
 * ever reused: each API call paid a TCP connect, a TLS handshake and a new OpenSSL
 * context. On the test control plane that was most of the controller's CPU, and the
 * contexts waiting for the garbage collector made its RSS grow by hundreds of MB with a
 * few thousand executions (bench/cluster). Here the first dispatcher made for a
 * cluster and user is kept and handed to every later request; undici's Agent keeps
 * connections alive and opens more as requests (and watches) need them.
 *
 * Headers (bearer tokens, which may be re-read from a file or an exec plugin) are still
 * set by client-node on every request; only the connection pool is shared. A client
 * certificate rotated on disk is picked up by a new process.
 */
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

export class PooledKubeConfig extends KubeConfig {
  readonly #pools = new Map<string, Dispatcher>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getDispatcher();
    if (made === undefined) return;
    const key = `${this.getCurrentCluster()?.server ?? ""}\u0000${this.getCurrentUser()?.name ?? ""}`;
    const pool = this.#pools.get(key);
    if (pool === undefined) this.#pools.set(key, made);
    else context.setDispatcher(pool);
  }
}

/** The kubeconfig of $KUBECONFIG, ~/.kube/config or the pod's ServiceAccount, with pooled connections. */
export function loadKubeConfig(): KubeConfig {
  const config = new PooledKubeConfig();
  config.loadFromDefault();
  return config;
}
