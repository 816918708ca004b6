// Malformed and random HTTP requests for fuzzing `corral serve`, from a seeded generator: bodies
// derived from the OpenAPI document's schemas and then broken (wrong types, huge strings, deep
// nesting, unknown fields), invalid JSON and wrong content types, junk and traversing paths, every
// method, and header-level garbage sent as raw bytes.

/** A deterministic random source (mulberry32) from a 32-bit seed. */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  patternProperties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}

export interface Operation {
  method: string;
  /** The path template, `/v1/templates/{name}`. */
  path: string;
  pathParams: string[];
  query: Record<string, JsonSchema>;
  body: JsonSchema | undefined;
}

/** The operations of an OpenAPI 3 document. */
export function operationsOf(doc: { paths: Record<string, Record<string, unknown>> }): Operation[] {
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const op = operation as {
        parameters?: { in: string; name: string; schema: JsonSchema }[];
        requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
      };
      const parameters = op.parameters ?? [];
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: parameters.filter((p) => p.in === "path").map((p) => p.name),
        query: Object.fromEntries(
          parameters.filter((p) => p.in === "query").map((p) => [p.name, p.schema]),
        ),
        body: op.requestBody?.content?.["application/json"]?.schema,
      });
    }
  }
  return operations;
}

/**
 * Names the fuzzer gives to things it may create: never equal to a path segment it sends, so that
 * nothing it creates is ever the target of a later start, restore or delete.
 */
export const CREATED_PREFIX = "fz";

/** Generates values for schemas of one OpenAPI document. */
export class ValueMaker {
  readonly #random: Random;
  readonly #components: Record<string, JsonSchema>;

  constructor(random: Random, components: Record<string, JsonSchema>) {
    this.#random = random;
    this.#components = components;
  }

  /** A value that mostly fits `schema` (patterns aside). */
  valid(schema: JsonSchema, depth = 0): unknown {
    const r = this.#random;
    const s = this.#resolve(schema);
    if (s.const !== undefined) return s.const;
    if (s.enum) return r.pick(s.enum);
    const union = s.anyOf ?? s.oneOf;
    if (union) return this.valid(r.pick(union), depth + 1);
    const type = Array.isArray(s.type) ? r.pick(s.type) : s.type;
    switch (type) {
      case "string":
        return `${CREATED_PREFIX}${name(r, Math.max(1, Math.min(s.maxLength ?? 12, 12) - 2))}`;
      case "integer":
        return (
          (s.minimum ?? 1) +
          r.int(Math.max(1, Math.min((s.maximum ?? 8) - (s.minimum ?? 1) + 1, 8)))
        );
      case "number":
        return (s.minimum ?? 0) + r.next();
      case "boolean":
        return r.chance(0.5);
      case "null":
        return null;
      case "array":
        return depth > 4 || !s.items
          ? []
          : Array.from({ length: r.int(3) }, () => this.valid(s.items as JsonSchema, depth + 1));
      default: {
        if (depth > 4) return {};
        const object: Record<string, unknown> = {};
        for (const [key, property] of Object.entries(s.properties ?? {})) {
          if (s.required?.includes(key) || r.chance(0.4))
            object[key] = this.valid(property, depth + 1);
        }
        const [pattern] = Object.values(s.patternProperties ?? {});
        if (pattern && r.chance(0.5)) object[name(r, 6)] = this.valid(pattern, depth + 1);
        return object;
      }
    }
  }

  /** `value` broken in one random way somewhere inside it. */
  mutate(value: unknown, depth = 0): unknown {
    const r = this.#random;
    if (value !== null && typeof value === "object" && depth < 6 && r.chance(0.7)) {
      const copy: Record<string, unknown> | unknown[] = Array.isArray(value)
        ? [...value]
        : { ...value };
      const keys = Object.keys(copy);
      if (keys.length > 0 && r.chance(0.75)) {
        const key = r.pick(keys);
        if (r.chance(0.2)) delete (copy as Record<string, unknown>)[key];
        else
          (copy as Record<string, unknown>)[key] = this.mutate(
            (copy as Record<string, unknown>)[key],
            depth + 1,
          );
        return copy;
      }
      (copy as Record<string, unknown>)[
        r.pick(["unknownField", "__proto__x", "constructor", "cpus", "0", "é"])
      ] = this.junk(2);
      return copy;
    }
    return this.junk(3);
  }

  /** A JSON value of any shape, often hostile: huge, deeply nested, at the edges of numbers. */
  junk(depth: number): unknown {
    const r = this.#random;
    switch (r.int(14)) {
      case 0:
        return r.pick([0, -1, 1.5, -0.000001, 2 ** 53 + 1, 1e308, -1e308, 65_537, 1_048_577]);
      case 1:
        return "";
      case 2:
        return "x".repeat(r.pick([256, 4096, 70_000, 500_000]));
      case 3:
        return r.pick([
          "../../../etc/passwd",
          "\u0000",
          "%00",
          "‮evil",
          "😀".repeat(50),
          "\\",
          "'; DROP TABLE vms; --",
          "$" + "{HOME}",
          "$(reboot)",
        ]);
      case 4:
        return null;
      case 5:
        return r.chance(0.5);
      case 6:
        return nested(r.int(2) === 0 ? 200 : 2000, r.chance(0.5));
      case 7:
        return depth > 0 ? Array.from({ length: r.int(4) }, () => this.junk(depth - 1)) : [];
      case 8:
        return depth > 0 ? { [name(r, 5)]: this.junk(depth - 1), cpus: this.junk(0) } : {};
      case 9:
        return Array.from({ length: r.pick([100, 10_000]) }, (_, i) => i);
      case 10:
        return Object.fromEntries(
          Array.from({ length: r.pick([70, 2000]) }, (_, i) => [`k${i}`, "v"]),
        );
      case 11:
        return `${CREATED_PREFIX}${name(r, 8)}`;
      case 12:
        return r.pick(["linux", "windows", "running", "true", "1", "NaN", "debian-12x"]);
      default:
        return -r.int(1000);
    }
  }

  #resolve(schema: JsonSchema): JsonSchema {
    let s = schema;
    for (let i = 0; s.$ref && i < 10; i++) {
      s = this.#components[s.$ref.replace("#/components/schemas/", "")] ?? {};
    }
    return s;
  }
}

/** Segments for path parameters and for random paths: none starts with CREATED_PREFIX. */
export function junkSegment(r: Random): string {
  return r.pick([
    "nope",
    "x",
    "..",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%2F..%2F",
    "%00",
    "%ff%fe",
    "%",
    "%zz",
    "a%2Fb",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "UPPER",
    "-leading",
    "é",
    "%F0%9F%98%80",
    "a".repeat(64),
    "b".repeat(5000),
    ";",
    "*",
    "%20",
    "null",
    "undefined",
    "__proto__",
    "constructor",
    "linux-default",
    "windows-default",
    "0",
    "-1",
  ]);
}

/** A path template with its parameters filled with junk segments, and a junk query sometimes. */
export function fillPath(r: Random, path: string, query: Record<string, JsonSchema>): string {
  const filled = path.replace(/\{[^}]+\}/g, () => junkSegment(r));
  if (!r.chance(0.4)) return filled;
  const names = [...Object.keys(query), "wait", "state", "label", "__proto__", "x[y]", "timeoutMs"];
  const pairs = Array.from({ length: 1 + r.int(3) }, () => {
    const value = r.pick([
      "",
      "true",
      "maybe",
      "-1",
      "99999999999999999999",
      "%00",
      "a=b",
      "running",
      junkSegment(r),
    ]);
    return `${encodeURIComponent(r.pick(names))}=${value}`;
  });
  return `${filled}?${pairs.join("&")}`;
}

/** A random path under /v1 or outside it, some with traversal and encoded junk. */
export function randomPath(r: Random): string {
  const prefix = r.pick(["/v1", "/v1", "", "/v2", "/v1/", "//v1", "/v1/.."]);
  const segments = Array.from({ length: r.int(5) }, () => junkSegment(r));
  return `${prefix}/${segments.join("/")}`;
}

export const METHODS = [
  "GET",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PROPFIND",
  "MKCOL",
  "PURGE",
  "SEARCH",
  "LOCK",
];

function name(r: Random, length: number): string {
  const letters = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length }, () => letters[r.int(letters.length)]).join("");
}

/** `[[[…]]]` or `{"a":{"a":…}}` nested `depth` deep, as a value. */
function nested(depth: number, isArray: boolean): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = isArray ? [value] : { a: value };
  return value;
}
