// The screen read by OCR (tesseract) on one real guest whose VGA text console shows known text.

import { ErrorCodes, Machine, TimeoutError } from "corral";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let machine: Machine;

/** Clears tty1 (the screen QEMU shows) and writes `text` at its top. */
const showOnTty1 = (text: string) => `chvt 1; printf '\\033c %s\\n' '${text}' > /dev/tty1`;

beforeAll(async () => {
  machine = new Machine({ name: "ocr" });
  await machine.waitForShell();
  await machine.succeed(showOnTty1("corral-ocr-check 42"));
});

afterAll(async () => {
  await machine?.[Symbol.asyncDispose]();
});

describe("screen text", () => {
  it("getScreenText reads what tty1 shows", async () => {
    expect(await machine.getScreenText()).toContain("corral-ocr-check 42");
  });

  it("getScreenTextVariants reads it three ways", async () => {
    const variants = await machine.getScreenTextVariants();
    expect(variants).toHaveLength(3);
    for (const text of variants) expect(text).toContain("corral-ocr-check");
  });

  it("waitForText resolves once the text appears and returns the text read", async () => {
    expect(await machine.waitForText(/corral-ocr-check/, { timeout: 30_000 })).toContain("42");
    await machine.succeed(`(sleep 2; ${showOnTty1("corral-ocr-later")}) >/dev/null 2>&1 &`);
    expect(await machine.waitForText("corral-ocr-later", { timeout: 60_000 })).toContain(
      "corral-ocr-later",
    );
  });

  it("waitForText times out for text that never appears, showing what it read", async () => {
    const started = performance.now();
    const error = await machine
      .waitForText(/never-on-screen/, { timeout: 8000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(
      /ocr: waitForText\(\/never-on-screen\/\): timed out after 8/,
    );
    expect((error as Error).message).toContain("corral-ocr-later");
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it("without tesseract, says how to install it", async () => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      await expect(machine.getScreenText()).rejects.toMatchObject({
        code: ErrorCodes.HOST_TOOL_MISSING,
        message: expect.stringContaining(
          "apt-get install -y --no-install-recommends tesseract-ocr",
        ),
      });
    } finally {
      process.env.PATH = path;
    }
  });
});
