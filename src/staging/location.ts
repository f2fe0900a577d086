/**
 * Locations (src/api/locations.ts) as staging uses them: a local path, an HTTP URL, or
 * an s3 URL that this backend refuses. Also the redacted form that goes into logs,
 * progress lines and error messages, so that credentials in URLs never reach them.
 */
import { posix } from "node:path";
import { fileURLToPath } from "node:url";
import { StagingError } from "./errors.ts";

export type ParsedLocation =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "http"; readonly url: URL }
  | { readonly kind: "s3"; readonly url: string };

/** Parses an absolute path or a file://, http(s):// or s3:// URL. */
export function parseLocation(location: string): ParsedLocation {
  if (location.startsWith("/")) return { kind: "file", path: posix.resolve(location) };
  if (location.startsWith("file://")) {
    try {
      return { kind: "file", path: posix.resolve(fileURLToPath(location)) };
    } catch (error) {
      throw invalid(location, "a file URL must be file:///absolute/path", error);
    }
  }
  if (location.startsWith("http://") || location.startsWith("https://")) {
    try {
      return { kind: "http", url: new URL(location) };
    } catch (error) {
      throw invalid(location, "not a valid URL", error);
    }
  }
  if (location.startsWith("s3://")) return { kind: "s3", url: location };
  throw invalid(location, "expected an absolute path or a file:///, http://, https:// or s3:// URL");
}

/** The refusal for s3:// locations: said plainly rather than half-supported. */
export function s3Unsupported(location: string): StagingError {
  return new StagingError(
    "Unsupported",
    `s3 staging is not available in this backend yet (${redactLocation(location)}); stage through an https:// URL (e.g. a presigned URL) or a shared file system path instead`,
  );
}

/** True when a destination names a folder to copy into (keeping the source's base name). */
export function namesFolder(location: string): boolean {
  return location.endsWith("/");
}

/**
 * A location fit for logs: user names, passwords and query strings (where presigned
 * URLs carry their tokens) are replaced by "***". Paths are shown as they are.
 */
export function redactLocation(location: string): string {
  if (!/^[a-z0-9+.-]+:\/\//i.test(location) || location.startsWith("file:")) return location;
  try {
    const url = new URL(location);
    if (url.username !== "" || url.password !== "") {
      url.username = "***";
      url.password = "";
    }
    if (url.search !== "") url.search = "***";
    return url.toString();
  } catch {
    return location.replace(/\/\/[^/@]*@/, "//***@").replace(/\?.*$/, "?***");
  }
}

/**
 * The URL to request and the headers that carry its credentials: fetch refuses URLs
 * with user info, so https://user:pass@host/ becomes basic authentication.
 */
export function requestTarget(url: URL): { url: string; headers: Record<string, string> } {
  if (url.username === "" && url.password === "") return { url: url.toString(), headers: {} };
  const bare = new URL(url);
  bare.username = "";
  bare.password = "";
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  const token = Buffer.from(`${user}:${password}`).toString("base64");
  return { url: bare.toString(), headers: { authorization: `Basic ${token}` } };
}

/** The file name an HTTP URL names (its last path segment, decoded), for `to: folder/`. */
export function urlBaseName(url: URL): string {
  const segment = url.pathname.split("/").pop() ?? "";
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    name = segment;
  }
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\\") || name.includes("\0")) {
    throw new StagingError(
      "InvalidLocation",
      `${redactLocation(url.toString())} names no file to copy into a folder; give "to" a file name instead of a trailing '/'`,
    );
  }
  return name;
}

function invalid(location: string, why: string, cause?: unknown): StagingError {
  return new StagingError("InvalidLocation", `invalid location ${JSON.stringify(redactLocation(location))}: ${why}`, {
    cause,
  });
}
