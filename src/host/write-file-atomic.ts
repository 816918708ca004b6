// Writing a small file so that a reader sees the old content or the new, never half of it.

import { rename, writeFile } from "node:fs/promises";

/** Writes `content` to a temporary file beside `path`, then renames it into place. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, path);
}
