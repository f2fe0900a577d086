/**
 * Who odop is to slurmrestd (rest_auth/jwt): a user name and a JWT, sent as
 * X-SLURM-USER-NAME and X-SLURM-USER-TOKEN on every request. Three providers:
 *
 * - staticToken: a token given once (e.g. from env SLURM_JWT, made by `scontrol token`).
 * - tokenFile: a token read from a file and read again whenever the file's mtime
 *   changes, so a rotated Kubernetes Secret mounted as a file is picked up.
 * - mintedToken: odop makes its own HS256 JWT from the cluster's jwt key file (the raw
 *   bytes slurm.conf names in `AuthAltParameters=jwt_key=…`), with the claims
 *   `scontrol token` writes: {iat, exp, sun}. auth/jwt takes `sun` as the user name.
 *   A token is renewed once less than 20 % of its life (and at least 60 s) is left.
 *
 * No provider logs a token or puts one in an error message.
 */
import { createHmac } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

export interface SlurmAuth {
  /** Slurm user name (X-SLURM-USER-NAME). */
  readonly user: string;
  /** The current token (X-SLURM-USER-TOKEN); asked before every request. */
  token(): Promise<string>;
}

/** A fixed token, e.g. `staticToken("odop", process.env.SLURM_JWT)`. */
export function staticToken(user: string, token: string): SlurmAuth {
  const value = token.trim();
  if (value === "") throw new RangeError(`Slurm token for user ${user} is empty`);
  return { user, token: () => Promise.resolve(value) };
}

/** A token in a file (surrounding white space ignored), read again when the file's mtime changes. */
export function tokenFile(user: string, path: string): SlurmAuth {
  const read = cachedFile(path, "Slurm token file");
  return {
    user,
    async token() {
      const value = (await read()).toString("utf8").trim();
      if (value === "") throw new Error(`Slurm token file ${path} is empty`);
      return value;
    },
  };
}

export type MintedTokenOptions = {
  user: string;
  /** The jwt key file of the cluster (raw bytes, as auth/jwt reads it); read again when its mtime changes. */
  keyFile: string;
  /** Lifespan of each token; default 1800 s (30 min). */
  lifespanSeconds?: number;
  /** Clock in milliseconds since the epoch; for tests. */
  now?: () => number;
};

/** Tokens minted by odop from the cluster's jwt key, renewed before they expire. */
export function mintedToken(options: MintedTokenOptions): SlurmAuth {
  const lifespan = options.lifespanSeconds ?? 1800;
  if (!Number.isInteger(lifespan) || lifespan < 60) throw new RangeError(`Slurm token lifespan must be a whole number of seconds, at least 60 (got ${lifespan})`);
  const now = options.now ?? Date.now;
  const readKey = cachedFile(options.keyFile, "Slurm jwt key file");
  /** Renew when this many seconds or fewer are left. */
  const margin = Math.max(60, Math.ceil(lifespan * 0.2));
  let current: { token: string; exp: number; key: Buffer } | undefined;
  return {
    user: options.user,
    async token() {
      const key = await readKey();
      const seconds = Math.floor(now() / 1000);
      if (current === undefined || current.exp - seconds <= margin || !current.key.equals(key)) {
        if (key.length === 0) throw new Error(`Slurm jwt key file ${options.keyFile} is empty`);
        const exp = seconds + lifespan;
        current = { token: mintJwt(key, { iat: seconds, exp, sun: options.user }), exp, key };
      }
      return current.token;
    },
  };
}

/** The claims auth/jwt reads: issued-at and expiry (Unix seconds), and the Slurm user name. */
export type SlurmJwtClaims = { iat: number; exp: number; sun: string };

/** An HS256 JWT (RFC 7519) signed with `key`, as `scontrol token` makes them. */
export function mintJwt(key: Buffer, claims: SlurmJwtClaims): string {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(JSON.stringify({ iat: claims.iat, exp: claims.exp, sun: claims.sun }));
  const signature = createHmac("sha256", key).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

function base64url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}

/** Reads `path` again only when its mtime or size changed since the last read. */
function cachedFile(path: string, what: string): () => Promise<Buffer> {
  let cached: { mtimeMs: number; size: number; data: Buffer } | undefined;
  return async () => {
    try {
      const info = await stat(path);
      if (cached === undefined || cached.mtimeMs !== info.mtimeMs || cached.size !== info.size) {
        cached = { mtimeMs: info.mtimeMs, size: info.size, data: await readFile(path) };
      }
      return cached.data;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "error";
      throw new Error(`${what} ${path} cannot be read (${code})`, { cause: error });
    }
  };
}
