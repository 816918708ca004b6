// The screen images OCR reads besides the screenshot itself: grey, contrast-stretched, enlarged
// and reduced to black and white, as is and negated (NixOS makes the same two with ImageMagick).

import { CorralError, ErrorCodes } from "../errors.ts";

/** An 8-bit greyscale image, row by row. */
export interface GrayImage {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/** How much the variants enlarge the screen: tesseract reads glyphs 25–40 pixels high best. */
const SCALE = 3;

/**
 * Reads a binary PPM (P6, 8 bits per channel: what QEMU's screendump writes) as greyscale.
 * Throws CORRAL_INVALID_ARGUMENT for anything else.
 */
export function parsePpm(file: Buffer): GrayImage {
  const fields: string[] = [];
  let at = 0;
  while (fields.length < 4 && at < file.length) {
    const char = String.fromCharCode(file[at] ?? 0);
    if (char === "#") {
      while (at < file.length && file[at] !== 0x0a) at++;
    } else if (/\s/.test(char)) {
      at++;
    } else {
      let field = "";
      while (at < file.length && !/\s/.test(String.fromCharCode(file[at] ?? 0))) {
        field += String.fromCharCode(file[at++] ?? 0);
      }
      fields.push(field);
    }
  }
  const [magic, width, height, maxValue] = [fields[0], ...fields.slice(1).map(Number)];
  const start = at + 1; // one whitespace byte ends the header
  if (
    magic !== "P6" ||
    maxValue !== 255 ||
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    file.length < start + (width ?? 0) * (height ?? 0) * 3
  ) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, "not an 8-bit binary PPM (P6) image");
  }
  const w = width as number;
  const h = height as number;
  const pixels = new Uint8Array(w * h);
  for (let i = 0; i < pixels.length; i++) {
    const p = start + i * 3;
    pixels[i] = Math.round(
      0.299 * (file[p] ?? 0) + 0.587 * (file[p + 1] ?? 0) + 0.114 * (file[p + 2] ?? 0),
    );
  }
  return { width: w, height: h, pixels };
}

/**
 * The image enlarged `SCALE` times (bilinear), its contrast stretched to the full range, then
 * black and white at the middle grey; `negate` swaps the two.
 */
export function ocrVariant(image: GrayImage, negate: boolean): GrayImage {
  const { width, height, pixels } = image;
  let low = 255;
  let high = 0;
  for (const value of pixels) {
    low = Math.min(low, value);
    high = Math.max(high, value);
  }
  const middle = (low + high) / 2;
  const out = { width: width * SCALE, height: height * SCALE, pixels: new Uint8Array(0) };
  out.pixels = new Uint8Array(out.width * out.height);
  const at = (x: number, y: number) => pixels[y * width + x] ?? 0;
  for (let y = 0; y < out.height; y++) {
    const sy = Math.min(height - 1, Math.max(0, (y + 0.5) / SCALE - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(height - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < out.width; x++) {
      const sx = Math.min(width - 1, Math.max(0, (x + 0.5) / SCALE - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(width - 1, x0 + 1);
      const fx = sx - x0;
      const top = at(x0, y0) * (1 - fx) + at(x1, y0) * fx;
      const bottom = at(x0, y1) * (1 - fx) + at(x1, y1) * fx;
      const isLight = high > low && top * (1 - fy) + bottom * fy > middle;
      out.pixels[y * out.width + x] = isLight !== negate ? 255 : 0;
    }
  }
  return out;
}

/** The image as a binary PGM (P5) file, which tesseract reads. */
export function toPgm(image: GrayImage): Buffer {
  const header = Buffer.from(`P5\n${image.width} ${image.height}\n255\n`);
  return Buffer.concat([header, image.pixels]);
}
