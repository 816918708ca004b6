// Which test files a `corral test` run takes: the `*.vm.ts` files under the folders given (or the
// conventional tests/ folder), narrowed by --grep and by a CI shard (--shard i/n).

import { readdir, stat } from "node:fs/promises";
import { availableParallelism, freemem } from "node:os";
import { extname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";

/** The suffix of a test file: its own, so vitest's `*.test.ts` files are never taken. */
export const TEST_FILE_SUFFIX = ".vm.ts";
/** Where `corral test` looks when given no file or folder. */
export const DEFAULT_TEST_FOLDER = "tests";
/** Free memory a running test file is given by the default of --jobs: one VM of the default image. */
export const JOB_MEMORY_MIB = 1024;
/** Folders never searched for test files. */
const SKIPPED_FOLDERS = new Set(["node_modules", ".git", "corral-results"]);

export interface TestFile {
  /** Absolute path. */
  path: string;
  /**
   * The test's name: its path without `.vm.ts` (POSIX separators), from the folder it was found
   * in, or from the working folder for a file given by name or when two folders share names.
   */
  name: string;
}

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/**
 * The test files under `paths` (files taken as given, folders searched for `*.vm.ts`), sorted by
 * name and without duplicates. Throws CORRAL_NOT_FOUND for a path that does not exist.
 */
export async function findTestFiles(
  paths: readonly string[],
  cwd = process.cwd(),
): Promise<TestFile[]> {
  const found = new Map<string, TestFile>();
  for (const given of paths) {
    const path = resolve(cwd, given);
    const info = await stat(path).catch(() => undefined);
    if (!info) {
      throw new CorralError(
        ErrorCodes.NOT_FOUND,
        `${given} does not exist: give test files or folders holding *${TEST_FILE_SUFFIX} files`,
      );
    }
    const files = info.isDirectory() ? await walk(path) : [path];
    const base = info.isDirectory() ? path : cwd;
    for (const file of files) found.set(file, { path: file, name: testName(file, base) });
  }
  const names = [...found.values()].map((file) => file.name);
  if (new Set(names).size < names.length) {
    for (const file of found.values()) file.name = testName(file.path, cwd);
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The files whose name matches `pattern` (a regular expression, as for --grep). */
export function grepTestFiles(files: readonly TestFile[], pattern: string): TestFile[] {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern);
  } catch (error) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `--grep ${JSON.stringify(pattern)} is not a regular expression: ${(error as Error).message}`,
    );
  }
  return files.filter((file) => regex.test(file.name));
}

/**
 * Shard `i` of `n` of the sorted files: every n-th file from the i-th, so that the shards of one
 * suite are disjoint, cover it, and are the same on every runner that has the same files.
 */
export function shardTestFiles(files: readonly TestFile[], shard: Shard): TestFile[] {
  return files.filter((_, index) => index % shard.count === shard.index - 1);
}

/** Parses `i/n` (1 ≤ i ≤ n). Throws CORRAL_INVALID_ARGUMENT. */
export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index < 1 || index > count) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `--shard ${JSON.stringify(text)} must be <i>/<n> with 1 ≤ i ≤ n, e.g. 1/4`,
    );
  }
  return { index, count };
}

/**
 * The default of --jobs: one test file per core (a VM under TCG keeps a core busy), and no more
 * than the free memory holds at JOB_MEMORY_MIB each; at least 1.
 */
export function defaultJobs(): number {
  const memorySlots = Math.floor(freemem() / (JOB_MEMORY_MIB * 1024 * 1024));
  return Math.max(1, Math.min(availableParallelism(), memorySlots));
}

async function walk(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_FOLDERS.has(entry.name)) files.push(...(await walk(path)));
    } else if (entry.name.endsWith(TEST_FILE_SUFFIX)) {
      files.push(path);
    }
  }
  return files;
}

function testName(file: string, base: string): string {
  const fromBase = relative(base, file);
  const path = fromBase.startsWith("..") || isAbsolute(fromBase) ? file : fromBase;
  const suffix = path.endsWith(TEST_FILE_SUFFIX) ? TEST_FILE_SUFFIX : extname(path);
  return path
    .slice(0, path.length - suffix.length)
    .split(sep)
    .join("/");
}
