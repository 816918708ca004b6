// The template catalog: the built-in templates corral ships (templates/*.yaml), the user's YAML
// files in their templates folder, and the store's templates table, kept as one set. The files
// are the truth: the store mirrors them at load, and adding or removing a user template through
// the catalog writes or removes its file.

import { randomBytes } from "node:crypto";
import { link, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { CorralError, ErrorCodes } from "../errors.ts";
import { makeDirs } from "../host/make-dirs.ts";
import { userTemplatesDir } from "../host/paths.ts";
import type { Store } from "../store/store.ts";
import type { Template } from "../store/templates.ts";
import {
  checkTemplateRules,
  readTemplateFile,
  TEMPLATE_FILE_SUFFIX,
  templateNameOf,
} from "./template-file.ts";
import type { TemplateDocument } from "./template-schema.ts";
import type { TemplateViewType } from "./template-view.ts";

/** The folder of the templates corral ships (the package's `templates/`). */
export const BUILTIN_TEMPLATES_DIR = fileURLToPath(new URL("../../templates/", import.meta.url));

/** What `load()` found. */
export interface TemplateLoadResult {
  /** The names of the built-in templates, sorted. */
  builtin: string[];
  /** The names of the user's templates that were loaded, sorted. */
  user: string[];
  /** One CORRAL_INVALID_ARGUMENT or CORRAL_CONFLICT per user file that was refused. */
  rejected: CorralError[];
}

export class TemplateCatalog {
  /** The user's templates folder; created when the first template is added. */
  readonly userDir: string;
  readonly #store: Store;

  /**
   * A catalog over `store`'s templates table and the YAML files in `userDir` (default
   * `$XDG_CONFIG_HOME/corral/templates`, else `~/.config/corral/templates`). Call `load()` before
   * using it.
   */
  constructor(store: Store, userDir: string = userTemplatesDir()) {
    this.#store = store;
    this.userDir = userDir;
  }

  /**
   * Writes the built-in templates into the store and reads the user's files, replacing what the
   * store held from earlier runs. A user file that is invalid (reported with its file, line and
   * field), or named like a built-in, is refused and listed in `rejected`; the others load.
   * Throws CORRAL_INVALID_ARGUMENT when a built-in template is invalid (a broken installation)
   * and when the user folder cannot be read.
   */
  async load(): Promise<TemplateLoadResult> {
    const builtins = await readFolder(BUILTIN_TEMPLATES_DIR);
    const rejected: CorralError[] = [];
    const users: TemplateDocument[] = [];
    for (const file of await readFolder(this.userDir)) {
      const name = templateNameOf(file);
      try {
        if (builtins.some((builtin) => templateNameOf(builtin) === name)) {
          throw new CorralError(
            ErrorCodes.CONFLICT,
            `template ${file}: a built-in template is named ${name}; rename the file and its name field`,
          );
        }
        users.push(await readTemplateFile(file, { expectName: name }));
      } catch (error) {
        if (!(error instanceof CorralError)) throw error;
        rejected.push(error);
      }
    }
    const shipped: TemplateDocument[] = [];
    for (const file of builtins) {
      shipped.push(await readTemplateFile(file, { expectName: templateNameOf(file) }));
    }
    this.#store.transaction(() => {
      for (const template of this.#store.templates.list()) {
        const kept = template.source === "builtin" ? shipped : users;
        if (!kept.some((document) => document.name === template.name)) {
          this.#store.templates.remove(template.name);
        }
      }
      for (const body of shipped)
        this.#store.templates.put({ name: body.name, source: "builtin", body });
      for (const body of users)
        this.#store.templates.put({ name: body.name, source: "user", body });
    });
    return {
      builtin: shipped.map((template) => template.name).sort(),
      user: users.map((template) => template.name).sort(),
      rejected,
    };
  }

  /** Every template, by name. */
  list(): TemplateViewType[] {
    return this.#store.templates.list().map((template) => this.#view(template));
  }

  /** The template of this name; throws CORRAL_NOT_FOUND naming the known ones when there is none. */
  get(name: string): TemplateViewType {
    const template = this.#store.templates.find(name);
    if (template) return this.#view(template);
    const known = this.#store.templates.list().map((t) => t.name);
    throw new CorralError(
      ErrorCodes.NOT_FOUND,
      `no template named "${name}" (known: ${known.join(", ") || "none"})`,
    );
  }

  /**
   * Adds a user template (already valid against TemplateSchema): writes `<userDir>/<name>.yaml`
   * (atomically, never over an existing file) and stores it. Throws CORRAL_INVALID_ARGUMENT when
   * it breaks a template rule (naming the body's field), CORRAL_CONFLICT when the name is taken
   * or a file of that name is already in the folder.
   */
  async add(template: TemplateDocument): Promise<TemplateViewType> {
    checkTemplateRules(template);
    const taken = this.#store.templates.find(template.name);
    if (taken) {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `a ${taken.source === "builtin" ? "built-in" : "user"} template named "${template.name}" already exists${taken.source === "user" ? ": remove it first to replace it" : ""}`,
      );
    }
    const file = this.#fileOf("user", template.name);
    await makeDirs(this.userDir, "the templates folder");
    // Written aside, then linked into place: the file appears whole, and never replaces one.
    const staged = join(this.userDir, `.${template.name}.${randomBytes(6).toString("hex")}`);
    await writeFile(staged, fileText(template), { flag: "wx", mode: 0o644 });
    try {
      await link(staged, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `${file} already exists (a template file that was refused when the daemon started?): fix or remove it first`,
        { cause: error },
      );
    } finally {
      await rm(staged, { force: true });
    }
    try {
      return this.#view(
        this.#store.templates.create({ name: template.name, source: "user", body: template }),
      );
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    }
  }

  /**
   * Removes a user template: its file, then its row. Throws CORRAL_NOT_FOUND when there is none
   * and CORRAL_CONFLICT for a built-in one.
   */
  async remove(name: string): Promise<TemplateViewType> {
    const template = this.get(name);
    if (template.source === "builtin") {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `"${name}" is a built-in template and cannot be removed; a user template may be made from it under another name`,
      );
    }
    await rm(template.file, { force: true });
    this.#store.templates.remove(name);
    return template;
  }

  #view(template: Template): TemplateViewType {
    return {
      name: template.name,
      source: template.source,
      file: this.#fileOf(template.source, template.name),
      template: template.body as unknown as TemplateDocument,
      createdAt: template.createdAt,
      updatedAt: template.updatedAt,
    };
  }

  #fileOf(source: Template["source"], name: string): string {
    const dir = source === "builtin" ? BUILTIN_TEMPLATES_DIR : this.userDir;
    return join(dir, `${name}${TEMPLATE_FILE_SUFFIX}`);
  }
}

/** The template files of a folder (none when it does not exist), sorted; dot files are skipped. */
async function readFolder(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `cannot read the templates folder ${dir}: ${error.message}`,
      { cause: error },
    );
  });
  return names
    .filter((name) => name.endsWith(TEMPLATE_FILE_SUFFIX) && !name.startsWith("."))
    .sort()
    .map((name) => join(dir, name));
}

function fileText(template: TemplateDocument): string {
  return `# Added through corral's API (POST /v1/templates). Edits here are read when corral serve starts.\n${stringify(template)}`;
}
