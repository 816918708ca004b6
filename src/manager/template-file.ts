// Template documents from YAML files and from API bodies, checked against TemplateSchema and the
// template rules; a bad one is refused naming the file, line and field (or the body's field).

import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { fieldName, type Problem, schemaProblems } from "./schema-problems.ts";
import { templateRuleProblems } from "./template-rules.ts";
import { type TemplateDocument, TemplateSchema } from "./template-schema.ts";
import { parseYamlSource } from "./yaml-source.ts";

/** A template file's name: `<template name>.yaml`. */
export const TEMPLATE_FILE_SUFFIX = ".yaml";

/**
 * The template in the YAML `text` of `file`. Throws CORRAL_INVALID_ARGUMENT whose message is the
 * first problem as `invalid template <file>:<line>:<col>: <field>: <what>`, and whose details
 * are the others. With `expectName`, the template's name must be that (a file in the templates
 * folder is named after its template).
 */
export function parseTemplate(
  text: string,
  file: string,
  options: { expectName?: string } = {},
): TemplateDocument {
  const source = parseYamlSource(text, file);
  if (source.syntaxErrors.length > 0) throw templateError(source.syntaxErrors);
  const value = source.value ?? {};
  // Problems in the order of the file's lines.
  const located = (problems: Problem[]) =>
    problems
      .map((problem) => ({ problem, ...source.position(problem.path) }))
      .sort((a, b) => a.line - b.line || a.col - b.col)
      .map(
        ({ problem, line, col }) =>
          `${file}:${line}:${col}: ${fieldName(problem.path)}: ${problem.message}`,
      );
  const problems = schemaProblems(TemplateSchema, value);
  if (problems.length > 0) throw templateError(located(problems));
  const template = value as TemplateDocument;
  const rules = templateRuleProblems(template);
  if (options.expectName !== undefined && template.name !== options.expectName) {
    rules.unshift({
      path: ["name"],
      message: `must be the file's name without ${TEMPLATE_FILE_SUFFIX} (${options.expectName}), got ${JSON.stringify(template.name)}`,
    });
  }
  if (rules.length > 0) throw templateError(located(rules));
  return template;
}

/**
 * Reads and parses a template file; see parseTemplate. Throws CORRAL_NOT_FOUND when the file
 * does not exist.
 */
export async function readTemplateFile(
  file: string,
  options: { expectName?: string } = {},
): Promise<TemplateDocument> {
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new CorralError(
      error.code === "ENOENT" ? ErrorCodes.NOT_FOUND : ErrorCodes.INVALID_ARGUMENT,
      `cannot read the template ${file}: ${error.code === "ENOENT" ? "no such file" : error.message}`,
      { cause: error },
    );
  });
  return parseTemplate(text, file, options);
}

/** The template name a file in the templates folder holds: its name without `.yaml`. */
export function templateNameOf(file: string): string {
  return basename(file, TEMPLATE_FILE_SUFFIX);
}

/**
 * Checks a template that its schema already accepted (an API body) against the template rules.
 * Throws CORRAL_INVALID_ARGUMENT naming each field as `body/<field>`.
 */
export function checkTemplateRules(template: TemplateDocument): void {
  const problems = templateRuleProblems(template);
  if (problems.length === 0) return;
  const [first, ...rest] = problems.map(
    (problem) => `body/${problem.path.join("/")}: ${problem.message}`,
  );
  throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `invalid template: ${first}`, {
    details: rest,
  });
}

function templateError(problems: string[]): CorralError {
  const [first = "", ...rest] = problems;
  return new CorralError(ErrorCodes.INVALID_ARGUMENT, `invalid template ${first}`, {
    details: rest,
  });
}
