import { describe, expect, it } from "vitest";
import { ocrVariant, parsePpm, toPgm } from "../../../src/machine/ocr-image.ts";

/** A P6 file as QEMU writes it, from rows of [r, g, b] pixels. */
function ppm(rows: number[][][], header?: string): Buffer {
  const width = rows[0]?.length ?? 0;
  return Buffer.concat([
    Buffer.from(header ?? `P6\n${width} ${rows.length}\n255\n`),
    Buffer.from(rows.flat(2)),
  ]);
}

describe("OCR images", () => {
  it("reads a binary PPM as grey, comments in the header included", () => {
    const file = ppm(
      [
        [
          [255, 255, 255],
          [0, 0, 0],
        ],
        [
          [255, 0, 0],
          [0, 0, 255],
        ],
      ],
      "P6\n# made by a test\n2 2\n255\n",
    );
    expect(parsePpm(file)).toEqual({
      width: 2,
      height: 2,
      pixels: new Uint8Array([255, 0, 76, 29]),
    });
  });

  it("refuses what is not an 8-bit P6 image", () => {
    expect(() => parsePpm(Buffer.from("P3\n1 1\n255\n0 0 0\n"))).toThrow(/P6/);
    expect(() => parsePpm(Buffer.from("P6\n4 4\n255\nabc"))).toThrow(/P6/);
  });

  it("enlarges three times into black and white, as is or negated", () => {
    const image = { width: 2, height: 1, pixels: new Uint8Array([200, 20]) };
    const positive = ocrVariant(image, false);
    expect([positive.width, positive.height]).toEqual([6, 3]);
    const firstRow = [...positive.pixels.subarray(0, 6)];
    expect(firstRow.slice(0, 2)).toEqual([255, 255]);
    expect(firstRow.slice(4)).toEqual([0, 0]);
    expect(firstRow.every((value) => value === 0 || value === 255)).toBe(true);
    const negative = ocrVariant(image, true);
    expect([...negative.pixels]).toEqual([...positive.pixels].map((value) => 255 - value));
  });

  it("writes a PGM that names its size", () => {
    const file = toPgm({ width: 2, height: 1, pixels: new Uint8Array([0, 255]) });
    expect(file.toString("latin1")).toBe("P5\n2 1\n255\n\u0000\u00ff");
  });
});
