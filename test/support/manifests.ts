/** Manifests for tests: the examples, and a valid OpTask to mutate. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export const EXAMPLES_DIR = join(import.meta.dirname, "../../examples");

/** Every document of every example file (recursively), with its file. */
export function exampleDocuments(): { file: string; doc: Record<string, unknown> }[] {
  const files = readdirSync(EXAMPLES_DIR, { recursive: true, encoding: "utf8" }).filter((f) => /\.ya?ml$/.test(f));
  return files.sort().flatMap((file) =>
    parseAllDocuments(readFileSync(join(EXAMPLES_DIR, file), "utf8"))
      .filter((d) => d.contents !== null)
      .map((d) => ({ file, doc: d.toJS() as Record<string, unknown> })),
  );
}

/** A small valid OpTask; tests derive invalid ones from it. */
export function baseTask(): Record<string, any> {
  return {
    apiVersion: "odop.io/v1alpha1",
    kind: "OpTask",
    metadata: { name: "base", namespace: "default" },
    spec: {
      trigger: { manual: {} },
      run: { command: ["true"] },
    },
  };
}

/** A copy of the base task with `edit` applied to its spec. */
export function task(edit: (spec: Record<string, any>, task: Record<string, any>) => void): Record<string, any> {
  const t = baseTask();
  edit(t["spec"], t);
  return t;
}
