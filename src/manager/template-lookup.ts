// Reading a template document from the store for a VM to be made from it, checked against the
// template schema: a row written by an older corral, or by hand, must not reach a VM unchecked.

import { Value } from "typebox/value";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { Store } from "../store/store.ts";
import { type TemplateDocument, TemplateSchema } from "./template-schema.ts";

/**
 * The template `name`, or undefined when the store has none of that name. Throws
 * CORRAL_INVALID_ARGUMENT naming the first field of a stored template that breaks the schema.
 */
export function findTemplate(store: Store, name: string): TemplateDocument | undefined {
  const row = store.templates.find(name);
  if (!row) return undefined;
  const body: unknown = row.body;
  if (Value.Check(TemplateSchema, body)) return body;
  const [first] = Value.Errors(TemplateSchema, body);
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `template "${name}" in the store is not a valid template: ${first ? `${first.instancePath || "/"} ${first.message}` : "it fails the schema"}; replace it (PUT it again) or remove it`,
  );
}

/** The template `name`; throws CORRAL_NOT_FOUND when the store has none of that name. */
export function requireTemplate(store: Store, name: string): TemplateDocument {
  const template = findTemplate(store, name);
  if (template) return template;
  const known = store.templates.list().map((row) => row.name);
  throw new CorralError(
    ErrorCodes.NOT_FOUND,
    `no template named "${name}" (${known.length > 0 ? `templates: ${known.join(", ")}` : "the store has no templates"})`,
  );
}
