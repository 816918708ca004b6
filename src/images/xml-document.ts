// A small XML writer: elements, attributes and text, escaped, indented two spaces, with the
// declaration. Enough for answer files; characters XML 1.0 cannot hold are refused, not dropped.

import { CorralError, ErrorCodes } from "../errors.ts";

export interface XmlElement {
  name: string;
  attributes: Readonly<Record<string, string>>;
  children: readonly (XmlElement | string)[];
}

/** An element; a child that is a string is text. */
export function xmlElement(
  name: string,
  attributes: Readonly<Record<string, string>> = {},
  ...children: (XmlElement | string)[]
): XmlElement {
  return { name, attributes, children };
}

/** An element holding only `text` (a number or boolean is written as JSON writes it). */
export function xmlText(name: string, text: string | number | boolean): XmlElement {
  return xmlElement(name, {}, String(text));
}

/**
 * The document: `<?xml version="1.0" encoding="utf-8"?>`, then `root`, one element per line,
 * an element with only text on its line. Throws CORRAL_INVALID_ARGUMENT for a character XML 1.0
 * does not allow (control characters other than tab, LF and CR; lone surrogates; U+FFFE, U+FFFF).
 */
export function renderXml(root: XmlElement): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n${renderElement(root, "")}\n`;
}

function renderElement(element: XmlElement, indent: string): string {
  const attributes = Object.entries(element.attributes)
    .map(([name, value]) => ` ${name}="${escapeXml(value, true)}"`)
    .join("");
  const open = `${indent}<${element.name}${attributes}`;
  if (element.children.length === 0) return `${open} />`;
  if (element.children.every((child) => typeof child === "string")) {
    return `${open}>${element.children.map((text) => escapeXml(text as string, false)).join("")}</${element.name}>`;
  }
  const inner = element.children.map((child) =>
    typeof child === "string"
      ? `${indent}  ${escapeXml(child, false)}`
      : renderElement(child, `${indent}  `),
  );
  return `${open}>\n${inner.join("\n")}\n${indent}</${element.name}>`;
}

// XML 1.0's Char production: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, and supplementary
// characters (a valid surrogate pair, which the `u` flag reads as one code point).
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function escapeXml(text: string, isAttribute: boolean): string {
  const bad = NOT_XML_CHAR.exec(text);
  if (bad) {
    const code = bad[0].codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0");
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${JSON.stringify(text)} holds U+${code}, which an XML document cannot hold`,
    );
  }
  const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return isAttribute
    ? escaped
        .replace(/"/g, "&quot;")
        .replace(/\t/g, "&#9;")
        .replace(/\n/g, "&#10;")
        .replace(/\r/g, "&#13;")
    : escaped.replace(/\r/g, "&#13;");
}
