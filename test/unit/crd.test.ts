import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseCel } from "@bufbuild/cel";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { KINDS } from "../../src/api/kinds.ts";
import { renderCrds } from "../../src/cli/crds.ts";

type Schema = { [key: string]: any };
const CRDS_DIR = join(import.meta.dirname, "../../crds");
const rendered = renderCrds();
const crds = rendered.map(({ file, text }) => ({ file, crd: parse(text) as Schema }));

/** Every node of a schema with its path. */
function* nodes(schema: Schema, path = ""): Generator<[string, Schema]> {
  yield [path, schema];
  for (const [k, v] of Object.entries(schema["properties"] ?? {})) yield* nodes(v as Schema, `${path}.${k}`);
  if (typeof schema["additionalProperties"] === "object") yield* nodes(schema["additionalProperties"] as Schema, `${path}.*`);
  if (schema["items"] !== undefined) yield* nodes(schema["items"] as Schema, `${path}[]`);
}

/** Follows a printer column's JSONPath through the schema; undefined when a step is not in the schema. */
function resolve(schema: Schema, jsonPath: string): Schema | undefined {
  let node: Schema | undefined = schema;
  for (const step of jsonPath.split(/\.(?![^[]*\])/).filter(Boolean)) {
    const [, name, filter] = /^([^[]+)(\[.*\])?$/.exec(step) ?? [];
    if (node === undefined || name === undefined) return undefined;
    node = node["properties"]?.[name] as Schema | undefined;
    if (filter !== undefined) node = node?.["items"] as Schema | undefined;
  }
  return node;
}

describe("crds/", () => {
  it("is what `odop crds` generates (run `npm run crds` after changing src/api)", () => {
    const committed = readdirSync(CRDS_DIR).filter((f) => f.endsWith(".yaml")).sort();
    expect(committed).toEqual(rendered.map((r) => r.file).sort());
    for (const { file, text } of rendered) {
      expect(readFileSync(join(CRDS_DIR, file), "utf8"), file).toBe(text);
    }
  });
});

describe.each(crds)("$file", ({ crd }) => {
  const version = crd.spec.versions[0];
  const schema = version.schema.openAPIV3Schema as Schema;
  const def = KINDS.find((k) => k.kind === crd.spec.names.kind)!;

  it("names the kind as DESIGN.md fixes it", () => {
    expect(crd.apiVersion).toBe("apiextensions.k8s.io/v1");
    expect(crd.spec.group).toBe("odop.io");
    expect(version.name).toBe("v1alpha1");
    expect(crd.spec.names.categories).toEqual(["odop"]);
    expect(crd.spec.names.shortNames).toContain(def.singular.replace("opexecution", "opexec"));
    expect(crd.spec.scope).toBe(def.kind === "OpNode" ? "Cluster" : "Namespaced");
    expect(version.subresources).toEqual({ status: {} });
  });

  it("has a structural schema", () => {
    for (const [path, node] of nodes(schema)) {
      const intOrString = node["x-kubernetes-int-or-string"] === true;
      expect(typeof node["type"] === "string" || intOrString, `${path} has a type`).toBe(true);
      expect(node["additionalProperties"], `${path} additionalProperties`).not.toBe(false);
      expect(node["x-kubernetes-preserve-unknown-fields"], `${path} preserves unknown fields`).toBeUndefined();
      if (node["anyOf"] !== undefined) expect(node["anyOf"]).toEqual([{ type: "integer" }, { type: "string" }]);
      for (const key of ["oneOf", "allOf", "not", "$ref", "nullable"]) expect(node[key], `${path}.${key}`).toBeUndefined();
    }
    // Only name may be described at the root: the API server resolves the CEL rules' fieldPath ".metadata.name" against it.
    expect(schema["properties"]["metadata"]).toEqual({ type: "object", properties: { name: { type: "string" } } });
  });

  it("has CEL rules that parse", () => {
    let count = 0;
    for (const [path, node] of nodes(schema)) {
      for (const v of (node["x-kubernetes-validations"] ?? []) as { rule: string; message: string }[]) {
        expect(() => parseCel(v.rule), `${path}: ${v.rule}`).not.toThrow();
        expect(v.message.length).toBeGreaterThan(0);
        count += 1;
      }
    }
    expect(count).toBeGreaterThan(0);
  });

  it("has printer columns that point into the schema", () => {
    expect(version.additionalPrinterColumns.length).toBeGreaterThanOrEqual(5);
    for (const column of version.additionalPrinterColumns as { name: string; jsonPath: string }[]) {
      if (column.jsonPath === ".metadata.creationTimestamp") continue;
      expect(resolve(schema, column.jsonPath), `${column.name}: ${column.jsonPath}`).toBeDefined();
    }
  });
});
