// The official VMM API specs (specs/, verbatim copies) as validators: a request's method and path
// must be an operation of the spec, and its body must match the operation's body schema; a reply
// body must match the schema of its status. Swagger 2.0 (Firecracker) keeps its schemas under
// `definitions`, OpenAPI 3.0 (Cloud Hypervisor) under `components.schemas`: both documents are
// given to ajv whole, with their `#/…` references rewritten to point into that document.
//
// One rule is stricter than the documents: an object schema that names its properties and says
// nothing of others rejects unknown ones (`additionalProperties: false`). Both VMMs deserialize
// with serde's `deny_unknown_fields` on most bodies, and a misspelt field is the bug to catch.

import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";
import { parse } from "yaml";

export type SpecName = "firecracker" | "cloud-hypervisor";

interface Operation {
  parameters?: { in: string; schema?: unknown; required?: boolean }[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> };
  responses: Record<string, { schema?: unknown; content?: Record<string, { schema?: unknown }> }>;
}

type Paths = Record<string, Record<string, Operation>>;

export interface SpecCheck {
  /** Why the request is not one the spec allows; undefined when it is. */
  requestProblem(method: string, path: string, body: unknown): string | undefined;
  /** Why `body` is not what the spec says `method path` answers with `status`. */
  replyProblem(method: string, path: string, status: number, body: unknown): string | undefined;
  /** Every operation of the spec, as "METHOD /path". */
  operations(): string[];
}

export function specFile(name: SpecName): string {
  return new URL(`../../specs/${name}.yaml`, import.meta.url).pathname;
}

const cache = new Map<SpecName, SpecCheck>();

/** The validator of spec `name` (built once). */
export function loadSpec(name: SpecName): SpecCheck {
  let check = cache.get(name);
  if (!check) {
    check = buildCheck(name);
    cache.set(name, check);
  }
  return check;
}

function buildCheck(name: SpecName): SpecCheck {
  const doc = parse(readFileSync(specFile(name), "utf8")) as Record<string, unknown>;
  const id = `https://corral.invalid/${name}.json`;
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema(rewrite(doc, id) as object, id);
  const paths = doc.paths as Paths;
  const compiled = new Map<unknown, ValidateFunction>();
  const validator = (schema: unknown): ValidateFunction => {
    let validate = compiled.get(schema);
    if (!validate) {
      validate = ajv.compile(rewrite(schema, id) as object);
      compiled.set(schema, validate);
    }
    return validate;
  };
  const find = (method: string, path: string): Operation | string => {
    const template = Object.keys(paths).find((candidate) => matches(candidate, path));
    if (!template) return `${path} is not a path of the ${name} spec`;
    const operation = paths[template]?.[method.toLowerCase()];
    if (!operation) return `${method} is not an operation of ${template} in the ${name} spec`;
    return operation;
  };
  return {
    requestProblem(method, path, body) {
      const operation = find(method, path);
      if (typeof operation === "string") return operation;
      const { schema, required } = bodySchema(operation);
      if (schema === undefined) {
        return body === undefined ? undefined : `${method} ${path} takes no body`;
      }
      if (body === undefined) {
        return required ? `${method} ${path} needs a body` : undefined;
      }
      const validate = validator(schema);
      return validate(body) ? undefined : ajv.errorsText(validate.errors);
    },
    replyProblem(method, path, status, body) {
      const operation = find(method, path);
      if (typeof operation === "string") return operation;
      const response = operation.responses[String(status)] ?? operation.responses.default;
      if (!response) return `${method} ${path} does not answer ${status}`;
      const schema = response.schema ?? response.content?.["application/json"]?.schema;
      if (schema === undefined) {
        return body === undefined ? undefined : `${method} ${path} ${status} has no body`;
      }
      const validate = validator(schema);
      return validate(body) ? undefined : ajv.errorsText(validate.errors);
    },
    operations() {
      return Object.entries(paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
      );
    },
  };
}

function bodySchema(operation: Operation): { schema: unknown; required: boolean } {
  const parameter = operation.parameters?.find((p) => p.in === "body");
  if (parameter) return { schema: parameter.schema, required: parameter.required ?? false };
  const content = operation.requestBody?.content?.["application/json"];
  return { schema: content?.schema, required: operation.requestBody?.required ?? false };
}

/** Whether `path` fills the template `template` (`/drives/{drive_id}`). */
function matches(template: string, path: string): boolean {
  const pattern = template.replace(/[.]/g, "\\.").replace(/\{[^}]+\}/g, "[^/]+");
  return new RegExp(`^${pattern}$`).test(path);
}

/** A copy with local references made absolute and named-property objects closed. */
function rewrite(value: unknown, id: string): unknown {
  if (Array.isArray(value)) return value.map((item) => rewrite(item, id));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = key === "$ref" && typeof item === "string" ? `${id}${item}` : rewrite(item, id);
  }
  if (out.properties !== undefined && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}
