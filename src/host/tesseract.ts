// Runs tesseract (Debian's tesseract-ocr) on an image file and returns the text it reads.

import { requireHostTools } from "./requirements.ts";
import { runProgram } from "./run-program.ts";

/**
 * The text tesseract reads in the image at `path` (PNG, PPM or PGM), in NixOS's page mode 11
 * (sparse text: words anywhere on the screen). Throws CORRAL_HOST_TOOL_MISSING, with the apt-get
 * line, when tesseract is not installed, and CORRAL_HOST_COMMAND_FAILED when it fails.
 */
export async function recognizeText(
  path: string,
  forWhat: string,
  signal?: AbortSignal,
): Promise<string> {
  requireHostTools(["tesseract"], forWhat);
  // One thread each: the variants run side by side (tesseract's own advice for parallel runs).
  const env = { ...process.env, OMP_THREAD_LIMIT: "1" };
  const args = [path, "-", "--psm", "11", "-c", "debug_file=/dev/null"];
  const { stdout } = await runProgram("tesseract", args, { env, signal });
  return stdout;
}
