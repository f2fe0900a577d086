/**
 * Reading manifests: files, folders (recursively, *.yaml, *.yml, *.json) and stdin, as
 * multi-document YAML, keeping each document's source so that a problem can be
 * reported at its line.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Document, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Tags } from "yaml";
import type { FieldPath } from "../api/validate.ts";

export type ManifestDocument = {
  /** The file, or "-" for stdin. */
  source: string;
  /** 1-based position of the document in its file. */
  index: number;
  /** The decoded value, or undefined when the document has syntax errors. */
  value: unknown;
  /** YAML syntax errors, with the line of each. */
  syntaxErrors: { line: number; message: string }[];
  /** The line of a field, or of its nearest ancestor present in the document. */
  lineOf: (path: FieldPath) => number | undefined;
};

export type ManifestSource = { source: string; text: string } | { source: string; error: string };

const MANIFEST_EXTENSIONS = [".yaml", ".yml", ".json"];

/** Expands files and folders into manifest sources; "-" reads stdin. */
export async function readSources(paths: readonly string[], stdin: () => Promise<string>): Promise<ManifestSource[]> {
  const sources: ManifestSource[] = [];
  for (const path of paths) {
    if (path === "-") {
      sources.push({ source: "-", text: await stdin() });
      continue;
    }
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const files = await manifestFiles(path);
        if (files.length === 0) sources.push({ source: path, error: "folder holds no *.yaml, *.yml or *.json file" });
        for (const file of files) sources.push({ source: file, text: await readFile(file, "utf8") });
      } else {
        sources.push({ source: path, text: await readFile(path, "utf8") });
      }
    } catch (error) {
      sources.push({ source: path, error: `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
    }
  }
  return sources;
}

async function manifestFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && MANIFEST_EXTENSIONS.some((ext) => e.name.endsWith(ext)))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * Splits a source into its documents; empty documents (a trailing `---`) are left out.
 *
 * Documents are read as kubectl and the API server read them: YAML 1.1 as Go's YAML
 * library resolves it, so an unquoted `on`, `yes` or `off` is a boolean (and a key `on:`
 * becomes "true"), `0755` is octal; timestamps and 12:30-style base-60 numbers, which
 * Go's library leaves as strings, stay strings.
 */
export function parseDocuments(source: string, text: string): ManifestDocument[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true, version: "1.1", customTags: goYamlTags });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: ManifestDocument[] = [];
  list.forEach((doc, i) => {
    const empty = doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null);
    if (empty && doc.errors.length === 0) return;
    const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
    const syntaxErrors = doc.errors.map((e) => ({ line: lineAt(e.pos[0]), message: e.message.split("\n")[0] ?? e.message }));
    out.push({
      source,
      index: i + 1,
      value: syntaxErrors.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : undefined,
      syntaxErrors,
      lineOf: (path) => {
        const offset = offsetOf(doc, path);
        return offset === undefined ? undefined : lineAt(offset);
      },
    });
  });
  return out;
}

/** YAML 1.1's tags less those Go's YAML library does not resolve (timestamps, base-60 numbers). */
function goYamlTags(tags: Tags): Tags {
  return tags.filter((t) => !(typeof t === "object" && (t.tag === "tag:yaml.org,2002:timestamp" || t.format === "TIME")));
}

/** The offset of the key (or item) at `path`, or of the deepest ancestor that exists. */
function offsetOf(doc: Document.Parsed, path: FieldPath): number | undefined {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range[0];
  for (const key of path) {
    if (isMap(node)) {
      // A key read as a boolean or number (YAML 1.1) is named by its string in paths.
      const pair = node.items.find((p) => String((p.key as { value?: unknown } | null)?.value) === String(key));
      if (pair === undefined) break;
      offset = (pair.key as { range?: [number, number, number] }).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof key === "number") {
      const item = node.items[key] as { range?: [number, number, number] } | undefined;
      if (item === undefined) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
