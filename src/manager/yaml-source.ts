// A YAML file parsed with the positions of its nodes, so that a problem found in the value it
// holds can be reported at its line and column (`x.yaml:4:3: cpus: must be >= 1`).

import { type Document, isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";

export interface YamlSource {
  /** The document's value as plain data (undefined for an empty file). */
  value: unknown;
  /** Syntax errors and warnings, each `file:line:col: message`. */
  syntaxErrors: string[];
  /** Where the field at `path` is, or the nearest parent that exists (line and column from 1). */
  position(path: readonly string[]): { line: number; col: number };
}

/** Parses `text` (the contents of `file`, which syntax errors name); duplicate keys are errors. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const syntaxErrors = [...doc.errors, ...doc.warnings].map(
    (error) => `${at(error.pos[0])}: ${error.message.split("\n")[0]}`,
  );
  return {
    value: syntaxErrors.length > 0 ? undefined : (doc.toJS() ?? undefined),
    syntaxErrors,
    position: (path) => lines.linePos(offsetOf(doc, path) ?? 0),
  };
}

/** Where `path` starts: a key's position in a map, an item's in a sequence; else its parent's. */
function offsetOf(doc: Document, path: readonly string[]): number | undefined {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0];
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => String((item.key as { value?: unknown } | null)?.value) === key,
      );
      if (!pair) break;
      offset = (pair.key as Node | null)?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(key)] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
