// Reading XML in tests with a real parser (@xmldom/xmldom): any well-formedness or namespace
// error throws, and elements are found by namespace and path.

import { DOMParser, type Element } from "@xmldom/xmldom";

/** The document's root element; throws on the first warning or error the parser reports. */
export function parseXmlStrict(text: string): Element {
  const parser = new DOMParser({
    onError: (level, message) => {
      throw new Error(`XML ${level}: ${message}`);
    },
  });
  const root = parser.parseFromString(text, "text/xml").documentElement;
  if (!root) throw new Error("XML: no root element");
  return root;
}

/** The child elements of `element` named `name` in namespace `ns`. */
export function childElements(element: Element, ns: string, name: string): Element[] {
  const found: Element[] = [];
  for (let node = element.firstChild; node; node = node.nextSibling) {
    const child = node as Element;
    if (
      node.nodeType === node.ELEMENT_NODE &&
      child.namespaceURI === ns &&
      child.localName === name
    ) {
      found.push(child);
    }
  }
  return found;
}

/** The one element at `path` below `element` (names in `ns`); throws when it is not exactly one. */
export function onlyElement(element: Element, ns: string, ...path: string[]): Element {
  let current = element;
  for (const name of path) {
    const matches = childElements(current, ns, name);
    if (matches.length !== 1) {
      throw new Error(`expected one <${name}> under <${current.tagName}>, found ${matches.length}`);
    }
    current = matches[0] as Element;
  }
  return current;
}

/** The text of the one element at `path`. */
export function textAt(element: Element, ns: string, ...path: string[]): string {
  return onlyElement(element, ns, ...path).textContent ?? "";
}
