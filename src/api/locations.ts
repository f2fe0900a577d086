/**
 * Where staged data comes from and goes to. One grammar serves zod and the CRD's CEL
 * (`matches` is RE2; these expressions mean the same in RE2 and JavaScript).
 */
import { z } from "zod";
import { celString, withRules } from "./rules.ts";

/** An absolute path, or a URL with a scheme odop can serve. */
export const LOCATION_SCHEMES = ["file", "http", "https", "s3"] as const;
const LOCATION_RE =
  "^(/|file:///|https?://[^/?#\\s]+([/?#]\\S*)?$|s3://[a-z0-9][a-z0-9.-]*[a-z0-9](/\\S*)?$)";
const HTTP_RE = "^https?://[^/?#\\s]+([/?#]\\S*)?$";
/** A segment ".." anywhere in a path. */
const PARENT_SEGMENT_RE = "(^|/)\\.\\.(/|$)";

const locationRe = new RegExp(LOCATION_RE);
const httpRe = new RegExp(HTTP_RE);
const parentRe = new RegExp(PARENT_SEGMENT_RE);

/** An absolute path or a file://, http(s):// or s3:// URL. */
export const Location = withRules(z.string().min(1).max(4096), [
  {
    cel: `self.matches(${celString(LOCATION_RE)})`,
    message:
      "must be an absolute path or a URL with scheme file:///, http://, https:// or s3://bucket/ (e.g. /scratch/run1/out.h5, https://archive.example.org/upload/)",
    holds: (v) => locationRe.test(v),
  },
]);

/** A URL that receives notifications. */
export const HttpUrl = withRules(z.string().min(1).max(2048), [
  {
    cel: `self.matches(${celString(HTTP_RE)})`,
    message: "must be an http:// or https:// URL",
    holds: (v) => httpRe.test(v),
  },
]);

/**
 * A path inside the execution's workspace. Absolute paths and ".." segments are refused
 * so that no stage can read or write outside the workspace.
 */
export const WorkspacePath = withRules(z.string().min(1).max(1024), [
  {
    cel: "!self.startsWith('/')",
    message: "must be relative to the execution's workspace (remove the leading '/')",
    holds: (v) => !v.startsWith("/"),
  },
  {
    cel: `!self.matches(${celString(PARENT_SEGMENT_RE)})`,
    message: "must stay inside the execution's workspace: remove '..' segments",
    holds: (v) => !parentRe.test(v),
  },
]);
