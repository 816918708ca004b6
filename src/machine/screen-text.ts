// Machine's screen-text verbs: the screen read by OCR (tesseract), as the NixOS driver's
// get_screen_text, get_screen_text_variants and wait_for_text.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Deadline, formatMs, type WaitOptions } from "../deadline.ts";
import { TimeoutError } from "../errors.ts";
import { recognizeText } from "../host/tesseract.ts";
import { ocrVariant, parsePpm, toPgm } from "./ocr-image.ts";
import { MONITOR_TIMEOUT_MS, type VmSession, WAIT_TIMEOUT_MS } from "./vm-session.ts";

/** How long waitForText waits between two readings of the screen (NixOS: one second). */
const RETRY_INTERVAL_MS = 1000;

/**
 * Reads the screen: the text tesseract finds in a screenshot, then (with `variants`, unless
 * `accept` takes that first text) in its two black-and-white variants. Returns the texts read.
 */
async function readScreen(
  session: VmSession,
  verb: string,
  deadline: Deadline,
  variants: boolean,
  accept: (text: string) => boolean = () => false,
): Promise<string[]> {
  const screen = session.ability(verb, "screenshot");
  const dir = await mkdtemp(join(tmpdir(), "corral-ocr-"));
  try {
    const shot = join(dir, "screen.ppm");
    await screen.screenshot(deadline, shot, "ppm");
    const ocr = (path: string) =>
      deadline.race(recognizeText(path, deadline.what, deadline.signal));
    const texts = [await ocr(shot)];
    if (!variants || accept(texts[0] ?? "")) return texts;
    const image = parsePpm(await readFile(shot));
    const files = [false, true].map((negate) =>
      join(dir, negate ? "negative.pgm" : "positive.pgm"),
    );
    await Promise.all(files.map((file, i) => writeFile(file, toPgm(ocrVariant(image, i === 1)))));
    texts.push(...(await Promise.all(files.map(ocr))));
    return texts;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The text on the screen, read by tesseract from one screenshot. */
export async function getScreenText(session: VmSession, options: WaitOptions): Promise<string> {
  const deadline = session.deadline("getScreenText", options, MONITOR_TIMEOUT_MS);
  const [text] = await readScreen(session, "getScreenText", deadline, false);
  return text ?? "";
}

/**
 * Three readings of one screenshot: as it is, and black-and-white enlarged, as is and negated;
 * a word one misses another often finds.
 */
export function getScreenTextVariants(session: VmSession, options: WaitOptions): Promise<string[]> {
  const deadline = session.deadline("getScreenTextVariants", options, MONITOR_TIMEOUT_MS);
  return readScreen(session, "getScreenTextVariants", deadline, true);
}

/**
 * Reads the screen (all three variants) once a second until one of the texts matches `regex`;
 * returns that text. The TimeoutError shows the last texts read.
 */
export async function waitForText(
  session: VmSession,
  regex: RegExp,
  options: WaitOptions,
): Promise<string> {
  const verb = `waitForText(${regex})`;
  const deadline = session.deadline(verb, options, WAIT_TIMEOUT_MS);
  let last: string[] = [];
  for (;;) {
    try {
      last = await readScreen(session, verb, deadline, true, (text) => regex.test(text));
    } catch (error) {
      if (!(error instanceof TimeoutError) || deadline.isCallerAbort) throw error;
      break;
    }
    const found = last.find((text) => regex.test(text));
    if (found !== undefined) return found;
    // A sleep the deadline cuts short ends the loop at the next reading's TimeoutError.
    await sleep(RETRY_INTERVAL_MS, undefined, { signal: deadline.signal }).catch(() => undefined);
  }
  throw new TimeoutError(`${deadline.what}: timed out after ${formatMs(deadline.timeoutMs)}`, {
    machine: session.name,
    details: [
      last.length > 0 ? "Last screen text read:" : "No screen text read.",
      ...last.map((text, i) =>
        [
          `  variant ${i + 1}:`,
          ...text
            .trim()
            .split("\n")
            .map((line) => `    | ${line}`),
        ].join("\n"),
      ),
    ],
  });
}
