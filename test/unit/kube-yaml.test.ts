/**
 * Kubernetes tools read YAML 1.1 (Go's library): every YAML file odop generates for them
 * must mean the same in 1.1 as in 1.2, or a CRD property `on:` arrives as "true" (it did).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { kubernetesYaml } from "../../src/api/kube-yaml.ts";

const ROOT = join(import.meta.dirname, "../..");
const FOLDERS = ["crds", "deploy", "charts/odop/crds"];
const files = FOLDERS.flatMap((f) => readdirSync(join(ROOT, f)).filter((n) => n.endsWith(".yaml")).map((n) => join(f, n)));

const read = (text: string, version: "1.1" | "1.2") =>
  parseAllDocuments(text, { version, customTags: (tags) => tags.filter((t) => !(typeof t === "object" && (t.tag === "tag:yaml.org,2002:timestamp" || t.format === "TIME"))) }).map((d) => d.toJS() as unknown);

describe("generated YAML reads the same in YAML 1.1", () => {
  it.each(files)("%s", (file) => {
    const text = readFileSync(join(ROOT, file), "utf8");
    expect(read(text, "1.1")).toEqual(read(text, "1.2"));
  });

  it("kubernetesYaml quotes what YAML 1.1 would read as something else", () => {
    const value = { on: "y", off: ["yes", "No", "0755", "1_000", "true"] };
    expect(read(kubernetesYaml(value), "1.1")).toEqual([value]);
  });
});
