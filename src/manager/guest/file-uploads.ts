// What every channel's writeFile shares: the options checked, the bytes counted and hashed as
// they pass, a temporary name beside the target, and (Linux) the script that checks the bytes
// that landed and only then renames them into place.

import { createHash, randomUUID } from "node:crypto";
import { CorralError, ErrorCodes } from "../../errors.ts";
import { shellQuote } from "../../guest/shell-quote.ts";

export interface WriteOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  sha256?: string;
}

/** The mode of a file written without one. */
export const DEFAULT_FILE_MODE = 0o644;
/** The script's status when the target is a folder, and when the bytes that landed differ. */
export const EXIT_IS_DIRECTORY = 46;
export const EXIT_SHA256_MISMATCH = 47;

/** Throws CORRAL_INVALID_ARGUMENT for a mode, uid, gid or sha256 out of range or form. */
export function checkWriteOptions(options: WriteOptions): void {
  const invalid = (problem: string) =>
    new CorralError(ErrorCodes.INVALID_ARGUMENT, `write file: ${problem}`);
  const { mode, uid, gid, sha256 } = options;
  if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
    throw invalid(`mode must be permission bits from 0 to 0o7777, not ${mode}`);
  }
  for (const [name, id] of [
    ["uid", uid],
    ["gid", gid],
  ] as const) {
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < 2 ** 32)) {
      throw invalid(`${name} must be a whole number from 0, not ${id}`);
    }
  }
  if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256)) {
    throw invalid(`sha256 must be 64 hex digits, not ${JSON.stringify(sha256)}`);
  }
}

/** Bytes passing through, counted and hashed. */
export class HashingSource {
  readonly #hash = createHash("sha256");
  #bytes = 0;
  #digest: string | undefined;
  readonly chunks: AsyncIterable<Uint8Array>;

  constructor(data: AsyncIterable<Uint8Array>) {
    const source = this;
    this.chunks = (async function* () {
      for await (const chunk of data) {
        source.#hash.update(chunk);
        source.#bytes += chunk.length;
        yield chunk;
      }
    })();
  }

  get sizeBytes(): number {
    return this.#bytes;
  }

  /** The sha256 (hex) of everything that passed; call once the chunks are used up. */
  get sha256(): string {
    this.#digest ??= this.#hash.digest("hex");
    return this.#digest;
  }
}

/** Throws CORRAL_INVALID_ARGUMENT when `expected` (if given) is not the sha256 of what came. */
export function requireSha256(path: string, actual: string, expected: string | undefined): void {
  if (expected === undefined || expected.toLowerCase() === actual) return;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `write file ${path}: the data's sha256 is ${actual}, not the ${expected.toLowerCase()} given; nothing was written`,
  );
}

/**
 * A temporary name in the target's folder (so the rename stays on one filesystem); on Windows
 * a backslash separates folders too.
 */
export function uploadName(path: string, isWindows = false): string {
  const at = Math.max(path.lastIndexOf("/"), isWindows ? path.lastIndexOf("\\") : -1);
  const folder = path.slice(0, at + 1);
  return `${folder}.corral-upload-${randomUUID()}`;
}

/**
 * Puts the upload `temporary` in place at `path` once its sha256 is `sha256`, with the mode
 * (default 0644) and owner asked for; removes it otherwise (EXIT_SHA256_MISMATCH, printing the
 * sha256 found; EXIT_IS_DIRECTORY when `path` is a folder). Without `sha256` the file is not
 * read again: the channel hashed its bytes as they arrived, and the caller compared the sums.
 */
export function commitUploadScript(
  temporary: string,
  path: string,
  sha256: string | undefined,
  options: WriteOptions,
): string {
  const owner =
    options.uid !== undefined || options.gid !== undefined
      ? `chown -- ${options.uid ?? ""}:${options.gid ?? ""} "$t" && `
      : "";
  const mode = (options.mode ?? DEFAULT_FILE_MODE).toString(8);
  return [
    `t=${shellQuote(temporary)} p=${shellQuote(path)}`,
    `if [ -d "$p" ] && [ ! -L "$p" ]; then rm -f -- "$t"; exit ${EXIT_IS_DIRECTORY}; fi`,
    ...(sha256 === undefined
      ? []
      : [
          `h=$(sha256sum -- "$t") || { rm -f -- "$t"; exit 1; }; h=\${h%% *}`,
          `if [ "$h" != ${sha256} ]; then rm -f -- "$t"; echo "$h"; exit ${EXIT_SHA256_MISMATCH}; fi`,
        ]),
    `${owner}chmod ${mode} -- "$t" && mv -f -- "$t" "$p" || { s=$?; rm -f -- "$t"; exit "$s"; }`,
  ].join("\n");
}

/** The commit script's own failures as errors: the target is a folder, the bytes differ. */
export function commitFailure(path: string, result: { exitCode: number; stdout: string }): void {
  if (result.exitCode === EXIT_IS_DIRECTORY) {
    throw new CorralError(ErrorCodes.CONFLICT, `write file ${path}: it is a folder`);
  }
  if (result.exitCode === EXIT_SHA256_MISMATCH) {
    throw new CorralError(
      ErrorCodes.GUEST_CHANNEL_BROKEN,
      `write file ${path}: the bytes that landed in the guest have sha256 ${result.stdout.trim()}, not those sent; nothing was written`,
    );
  }
}
