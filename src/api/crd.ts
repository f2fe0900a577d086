/**
 * CRDs generated from the zod schemas, the single source of truth. zod writes a JSON
 * Schema; this module turns it into a *structural* OpenAPI v3 schema as
 * apiextensions.k8s.io/v1 requires (every node typed, no unions but int-or-string, no
 * `additionalProperties: false`: the API server prunes or, with kubectl's default
 * strict field validation, refuses unknown fields).
 */
import { z } from "zod";
import { DURATION_PATTERN } from "./duration.ts";
import { type KindDefinition, KINDS } from "./kinds.ts";
import { CATEGORY, GROUP, VERSION } from "./meta.ts";
import { QUANTITY_PATTERN } from "./quantity.ts";

type JsonSchema = { [key: string]: unknown };

/** Keys of zod's JSON Schema that carry over unchanged. */
const KEPT = new Set([
  "type",
  "description",
  "default",
  "enum",
  "format",
  "pattern",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "required",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
]);

/** Keys that are dropped on purpose. */
const DROPPED = new Set(["additionalProperties", "properties", "items", "x-odop-type", "$schema"]);

const SAFE_INT = Number.MAX_SAFE_INTEGER;

/** Converts one node of zod's JSON Schema to a structural schema node. */
export function structural(node: JsonSchema, path: string): JsonSchema {
  const special = node["x-odop-type"];
  if (special === "quantity") return quantitySchema(node);
  if (special === "duration") return durationSchema(node);

  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (KEPT.has(key)) out[key] = value;
    else if (!DROPPED.has(key)) throw new Error(`${path || "<root>"}: "${key}" cannot be expressed in a structural CRD schema`);
  }
  if (out["type"] === undefined) throw new Error(`${path || "<root>"}: every node of a structural schema needs a type`);

  if (out["type"] === "integer") {
    if (out["minimum"] === -SAFE_INT) delete out["minimum"];
    if (out["maximum"] === SAFE_INT) delete out["maximum"];
    out["format"] = "int64";
  }
  // The API server checks format: date-time itself; zod's long pattern adds nothing.
  if (out["format"] === "date-time") delete out["pattern"];

  const properties = node["properties"] as Record<string, JsonSchema> | undefined;
  // The API server drops an empty properties map (omitempty): written, it would make
  // every kubectl apply of an unchanged CRD a change ("configured").
  if (properties !== undefined && Object.keys(properties).length > 0) {
    out["properties"] = Object.fromEntries(
      Object.entries(properties).map(([name, child]) => [name, structural(child, `${path}.${name}`)]),
    );
  }
  const additional = node["additionalProperties"];
  if (typeof additional === "object" && additional !== null) {
    out["additionalProperties"] = structural(additional as JsonSchema, `${path}.*`);
  }
  const items = node["items"];
  if (items !== undefined) out["items"] = structural(items as JsonSchema, `${path}[]`);
  return out;
}

function quantitySchema(node: JsonSchema): JsonSchema {
  return {
    ...(node["description"] === undefined ? {} : { description: node["description"] }),
    anyOf: [{ type: "integer" }, { type: "string" }],
    "x-kubernetes-int-or-string": true,
    pattern: QUANTITY_PATTERN,
    "x-kubernetes-validations": [
      { rule: "type(self) != int || self >= 0", message: "must not be negative" },
    ],
  };
}

function durationSchema(node: JsonSchema): JsonSchema {
  return {
    type: "string",
    ...(node["description"] === undefined ? {} : { description: node["description"] }),
    ...(node["default"] === undefined ? {} : { default: node["default"] }),
    maxLength: 64,
    pattern: DURATION_PATTERN,
    "x-kubernetes-validations": [
      { rule: "duration(self) > duration('0s')", message: 'must be a positive duration, e.g. "30s", "5m", "1h30m"' },
    ],
  };
}

/** The openAPIV3Schema of one kind. */
export function openApiSchema(def: KindDefinition): JsonSchema {
  const json = z.toJSONSchema(def.schema, { target: "openapi-3.0", io: "input", unrepresentable: "throw" }) as JsonSchema;
  delete (json["properties"] as Record<string, JsonSchema>)["metadata"];
  const schema = structural(json, "");
  const properties = schema["properties"] as Record<string, JsonSchema>;
  // At the root the API server owns metadata; only name and generateName may be described.
  // The name's property must be declared: the API server resolves a CEL rule's
  // fieldPath ".metadata.name" against the schema, and refuses the CRD without it.
  properties["metadata"] = { type: "object", properties: { name: { type: "string" } } };
  properties["apiVersion"] = { type: "string", description: "odop.io/v1alpha1" };
  properties["kind"] = { type: "string", description: def.kind };
  delete schema["required"];
  schema["required"] = ["spec"].filter((p) => def.kind !== "OpNode" || p !== "spec");
  if ((schema["required"] as string[]).length === 0) delete schema["required"];
  schema["description"] = DESCRIPTIONS[def.kind];
  return schema;
}

const DESCRIPTIONS: Record<KindDefinition["kind"], string> = {
  OpTask:
    "A data operation that odop runs opportunistically on idle resources: what runs, when it is triggered, what it needs, and where its inputs come from and its outputs go.",
  OpExecution: "One run of an OpTask, with its own id and lifecycle. Set spec.action to Pause, Run (resume), Stop or Skip.",
  OpNode: "A node where odop harvests idle resources: capacity, the main application's usage, and what is harvestable now.",
};

/** The CustomResourceDefinition of one kind. */
export function crdFor(def: KindDefinition): JsonSchema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "odop", "app.kubernetes.io/part-of": "odop" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: [CATEGORY],
      },
      scope: def.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.columns,
          schema: { openAPIV3Schema: openApiSchema(def) },
        },
      ],
    },
  };
}

/** Every CRD, in a stable order, with the file name each is written to. */
export function allCrds(): { file: string; crd: JsonSchema }[] {
  return KINDS.map((def) => ({ file: `${GROUP}_${def.plural}.yaml`, crd: crdFor(def) }));
}
