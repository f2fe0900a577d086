/**
 * A TCP proxy on 127.0.0.1 in front of the API server that can cut a client off the way
 * a broken network does: hang() keeps every connection open but forwards nothing more
 * in either direction (new connections are accepted and left silent), resume() lets the
 * bytes flow again. TLS passes through untouched (the server's certificate names
 * 127.0.0.1, whatever the port).
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type HangProxy = {
  port: number;
  /** https://127.0.0.1:<port> */
  url: string;
  hang(): void;
  resume(): void;
  close(): Promise<void>;
};

export async function startHangProxy(target: { host: string; port: number }): Promise<HangProxy> {
  let hung = false;
  const pairs = new Set<{ client: Socket; upstream: Socket | undefined; held: Buffer[] }>();
  const connect = (pair: { client: Socket; upstream: Socket | undefined; held: Buffer[] }) => {
    const upstream = createConnection(target);
    pair.upstream = upstream;
    for (const chunk of pair.held.splice(0)) upstream.write(chunk);
    upstream.on("data", (d: Buffer) => {
      if (!pair.client.destroyed) pair.client.write(d);
    });
    upstream.on("error", () => pair.client.destroy());
    upstream.on("close", () => pair.client.destroy());
    if (hung) upstream.pause();
  };
  const server: Server = createServer((client) => {
    const pair = { client, upstream: undefined as Socket | undefined, held: [] as Buffer[] };
    pairs.add(pair);
    client.on("data", (d: Buffer) => {
      if (pair.upstream === undefined) pair.held.push(d);
      else pair.upstream.write(d);
    });
    client.on("error", () => pair.upstream?.destroy());
    client.on("close", () => {
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    if (hung) client.pause();
    else connect(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    port: address.port,
    url: `https://127.0.0.1:${address.port}`,
    hang() {
      hung = true;
      for (const p of pairs) {
        p.client.pause();
        p.upstream?.pause();
      }
    },
    resume() {
      hung = false;
      for (const p of pairs) {
        p.client.resume();
        if (p.upstream === undefined) connect(p);
        else p.upstream.resume();
      }
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
