/** `odop validate -f PATH...`: checks manifests without a cluster. */
import { formatPath, validateObject } from "../api/validate.ts";
import { type ManifestDocument, parseDocuments, readSources } from "./manifests.ts";

export type ValidateReport = { documents: number; invalid: number; lines: string[] };

/** Validates every document of every path; one line per problem. */
export async function validatePaths(paths: readonly string[], stdin: () => Promise<string>): Promise<ValidateReport> {
  const lines: string[] = [];
  let documents = 0;
  let invalid = 0;
  for (const source of await readSources(paths, stdin)) {
    if ("error" in source) {
      lines.push(`${source.source}: ${source.error}`);
      invalid += 1;
      continue;
    }
    const docs = parseDocuments(source.source, source.text);
    if (docs.length === 0) lines.push(`${source.source}: holds no document`);
    for (const doc of docs) {
      documents += 1;
      const problems = problemLines(doc);
      if (problems.length > 0) invalid += 1;
      lines.push(...problems);
    }
  }
  return { documents, invalid, lines };
}

function problemLines(doc: ManifestDocument): string[] {
  const where = (line: number | undefined): string => `${doc.source}:${line === undefined ? "" : `${line}:`} doc ${doc.index}`;
  if (doc.syntaxErrors.length > 0) {
    return doc.syntaxErrors.map((e) => `${where(e.line)}: YAML: ${e.message}`);
  }
  const result = validateObject(doc.value);
  if (result.ok) return [];
  const subject = result.kind === undefined ? "" : ` ${result.kind}${result.name === undefined ? "" : `/${result.name}`}`;
  return result.problems.map((p) => `${where(doc.lineOf(p.path))}${subject}: ${formatPath(p.path)}: ${p.message}`);
}
