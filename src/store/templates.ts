// The templates table: named VM templates, built in (written by the manager from the ones corral
// ships, on every start) or the user's. The body is the template document itself, whose schema
// the manager owns.

import { CorralError, ErrorCodes } from "../errors.ts";
import {
  fromJson,
  type JsonObject,
  now,
  objectToJson,
  requireDnsLabel,
  requireOneOf,
} from "./columns.ts";
import type { Database } from "./database.ts";
import { uniqueColumns } from "./sqlite-errors.ts";

export const TEMPLATE_SOURCES = ["builtin", "user"] as const;
export type TemplateSource = (typeof TEMPLATE_SOURCES)[number];

export interface Template {
  /** A DNS label, unique among templates. */
  name: string;
  source: TemplateSource;
  body: JsonObject;
  createdAt: string;
  updatedAt: string;
}

export interface NewTemplate {
  name: string;
  source: TemplateSource;
  body: object;
}

interface TemplateRow {
  name: string;
  source: TemplateSource;
  body: string;
  created_at: string;
  updated_at: string;
}

export class TemplateRepository {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Adds a template; throws CORRAL_CONFLICT when the name is taken, naming the template's source. */
  create(input: NewTemplate): Template {
    const { name, source, body } = checked(input);
    return this.#db.transaction(() => {
      const time = now();
      try {
        this.#db
          .prepare(
            "INSERT INTO templates (name, source, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
          )
          .run(name, source, body, time, time);
      } catch (error) {
        if (uniqueColumns(error) !== "templates.name") throw error;
        const taken = this.get(name).source === "builtin" ? "built-in" : "user";
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `a ${taken} template named "${name}" already exists`,
          { cause: error },
        );
      }
      return this.get(name);
    });
  }

  /** Adds the template, or replaces the body and source of the one of that name. */
  put(input: NewTemplate): Template {
    const { name, source, body } = checked(input);
    return this.#db.transaction(() => {
      const time = now();
      this.#db
        .prepare(
          `INSERT INTO templates (name, source, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET source = excluded.source, body = excluded.body,
             updated_at = excluded.updated_at`,
        )
        .run(name, source, body, time, time);
      return this.get(name);
    });
  }

  /** The template of this name, if there is one. */
  find(name: string): Template | undefined {
    const row = this.#db.prepare("SELECT * FROM templates WHERE name = ?").get(name) as
      | TemplateRow
      | undefined;
    return row && toTemplate(row);
  }

  /** The template of this name; throws CORRAL_NOT_FOUND when there is none. */
  get(name: string): Template {
    const template = this.find(name);
    if (!template) throw new CorralError(ErrorCodes.NOT_FOUND, `no template named "${name}"`);
    return template;
  }

  /** The templates by name; only those from `source` when given. */
  list(filter: { source?: TemplateSource } = {}): Template[] {
    const rows = (filter.source === undefined
      ? this.#db.prepare("SELECT * FROM templates ORDER BY name").all()
      : this.#db
          .prepare("SELECT * FROM templates WHERE source = ? ORDER BY name")
          .all(
            requireOneOf(filter.source, TEMPLATE_SOURCES, "template source"),
          )) as unknown as TemplateRow[];
    return rows.map(toTemplate);
  }

  /** Deletes the template and returns it; throws CORRAL_NOT_FOUND when there is none. */
  remove(name: string): Template {
    return this.#db.transaction(() => {
      const template = this.get(name);
      this.#db.prepare("DELETE FROM templates WHERE name = ?").run(name);
      return template;
    });
  }
}

function checked(input: NewTemplate): { name: string; source: TemplateSource; body: string } {
  return {
    name: requireDnsLabel(input.name, "template name"),
    source: requireOneOf(input.source, TEMPLATE_SOURCES, "template source"),
    body: objectToJson(input.body, "template body"),
  };
}

function toTemplate(row: TemplateRow): Template {
  return {
    name: row.name,
    source: row.source,
    body: fromJson(row.body) as JsonObject,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
