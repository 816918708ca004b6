// A value checked against a TypeBox schema, as a list of problems a person can act on: the path
// of each bad field and what is wrong with it ("must be one of linux, windows, got \"mac\""),
// rather than TypeBox's raw errors (one per union member, false schemas for unknown keys).

import type { TSchema } from "typebox";
import { Value } from "typebox/value";
import { describeValue } from "../errors.ts";

/** One thing wrong with a document: where (keys and array indexes) and what. */
export interface Problem {
  path: string[];
  message: string;
}

interface SchemaNode {
  description?: string;
  const?: unknown;
  anyOf?: SchemaNode[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

/** Every way `value` breaks `schema`, at most one problem per field and rule. */
export function schemaProblems(schema: TSchema, value: unknown): Problem[] {
  const errors = [...Value.Errors(schema, value)];
  // The alternatives of a failed union are reported once, by the union itself.
  const unions = errors
    .filter((error) => error.keyword === "anyOf")
    .map((error) => `${error.schemaPath}/anyOf/`);
  const problems: Problem[] = [];
  for (const error of errors) {
    if (unions.some((prefix) => error.schemaPath.startsWith(prefix))) continue;
    // TypeBox reports each unknown key twice: once as additionalProperties, once as a false schema.
    if (error.keyword === "boolean") continue;
    const path = error.instancePath.split("/").slice(1).map(unescapePointer);
    const node = schemaAt(schema as SchemaNode, error.schemaPath);
    if (error.keyword === "additionalProperties") {
      const known = Object.keys(node?.properties ?? {}).join(", ");
      for (const key of error.params.additionalProperties as string[]) {
        problems.push({ path: [...path, key], message: `is not a known field (known: ${known})` });
      }
      continue;
    }
    if (error.keyword === "required") {
      for (const key of error.params.requiredProperties as string[]) {
        problems.push({ path: [...path, key], message: "is required" });
      }
      continue;
    }
    const got = describeValue(valueAt(value, path));
    problems.push({ path, message: `${explain(error, node)}, got ${got}` });
  }
  return problems;
}

/** `path` as people write it: `drives[0].path`, or `(the document)` for the root. */
export function fieldName(path: readonly string[]): string {
  if (path.length === 0) return "(the document)";
  return path
    .map((key, i) => (/^\d+$/.test(key) ? `[${key}]` : i === 0 ? key : `.${key}`))
    .join("");
}

function explain(
  error: { keyword: string; message: string; params: Record<string, unknown> },
  node: SchemaNode | undefined,
): string {
  switch (error.keyword) {
    case "anyOf": {
      const constants = node?.anyOf?.map((alternative) => alternative.const);
      return constants?.every((constant) => constant !== undefined)
        ? `must be one of ${constants.join(", ")}`
        : "matches none of the allowed forms";
    }
    case "pattern":
      return `must be ${node?.description ?? error.message}`;
    case "minLength":
      return error.params.limit === 1 ? "must not be empty" : error.message;
    default:
      return error.message;
  }
}

/** The schema a JSON pointer like `#/properties/drives/items/properties/media` names. */
function schemaAt(root: SchemaNode, pointer: string): SchemaNode | undefined {
  let node: unknown = root;
  for (const key of pointer.replace(/^#\/?/, "").split("/").filter(Boolean)) {
    node = (node as Record<string, unknown> | undefined)?.[unescapePointer(key)];
  }
  return node as SchemaNode | undefined;
}

function valueAt(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>(
    (object, key) =>
      object !== null && typeof object === "object"
        ? (object as Record<string, unknown>)[key]
        : undefined,
    value,
  );
}

function unescapePointer(segment: string): string {
  return segment.replaceAll("~1", "/").replaceAll("~0", "~");
}
