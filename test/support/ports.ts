/** Free TCP ports on 127.0.0.1, for servers a test starts as separate processes. */
import { createServer } from "node:net";

/** n different free ports (the kernel hands them out; another process may take one before it is used). */
export async function freePorts(n: number): Promise<number[]> {
  // Hold all n listeners at once so the kernel hands out n different ports.
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error("no free port");
  return port;
}
