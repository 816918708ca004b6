// The XML writer: its output parses, with text and attributes read back exactly as given.

import { describe, expect, it } from "vitest";
import { renderXml, xmlElement, xmlText } from "../../../src/images/xml-document.ts";
import { parseXmlStrict } from "../../helpers/xml.ts";

describe("renderXml", () => {
  it("writes the declaration, indents nested elements and keeps text-only elements on one line", () => {
    expect(
      renderXml(
        xmlElement("a", { x: "1" }, xmlText("b", "text"), xmlElement("c"), xmlText("d", 3)),
      ),
    ).toBe(
      '<?xml version="1.0" encoding="utf-8"?>\n<a x="1">\n  <b>text</b>\n  <c />\n  <d>3</d>\n</a>\n',
    );
  });

  it("escapes text and attributes so a parser reads back exactly what was given", () => {
    const tricky = `<&>"' ]]> \t\r\n😀 ${"\u00e9"}`;
    const root = parseXmlStrict(renderXml(xmlElement("a", { v: tricky }, xmlText("b", tricky))));
    expect(root.getAttribute("v")).toBe(tricky);
    expect(root.getElementsByTagName("b")[0]?.textContent).toBe(tricky);
  });

  it("refuses characters XML cannot hold", () => {
    for (const bad of ["\u0000", "\u0001", "\u001b", "\uFFFE", "\uD800", "a\uDC00"]) {
      expect(() => renderXml(xmlText("a", bad)), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
      );
      expect(() => renderXml(xmlElement("a", { v: bad }))).toThrow(/cannot hold/);
    }
  });
});
