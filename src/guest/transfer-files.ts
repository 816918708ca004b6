// The host's side of a copy: what a source on the host is (a folder is sent as a tar archive of
// its files, folders and symlinks), and where data from the guest is kept until it is complete.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, mkdirSync, type Stats, type WriteStream } from "node:fs";
import { cp, lstat, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import type { Writable } from "node:stream";
import { CorralError, ErrorCodes } from "../errors.ts";
import { runProgram } from "../host/run-program.ts";

export type SourceKind = "file" | "directory";

export interface HostSource extends AsyncDisposable {
  kind: SourceKind;
  /** The file to send: the source itself, or the tar archive of a folder. */
  path: string;
  /** The source's permission bits. */
  mode: number;
}

/** The host path `source`, ready to send (see `hostSourceInfo` for what it throws). */
export async function hostSource(source: string, signal: AbortSignal): Promise<HostSource> {
  const info = await hostSourceInfo(source);
  const nothing = async () => {};
  if (info.isFile()) {
    return { kind: "file", path: source, mode: info.mode, [Symbol.asyncDispose]: nothing };
  }
  const dir = await mkdtemp(join(tmpdir(), "corral-copy-"));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const archive = join(dir, "tree.tar");
    const names = await treeNames(source);
    await runProgram(
      "tar",
      ["-c", "-f", archive, "-C", source, "--null", "--no-recursion", "-T", "-"],
      { input: names.map((name) => `${name}\0`).join(""), signal },
    );
    return { kind: "directory", path: archive, mode: info.mode, [Symbol.asyncDispose]: remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/**
 * The host path `source`'s stat when it is a regular file or a folder. Throws CORRAL_NOT_FOUND
 * when it does not exist and CORRAL_INVALID_ARGUMENT when it is anything else.
 */
export async function hostSourceInfo(source: string): Promise<Stats> {
  const info = await stat(source).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
    throw new CorralError(ErrorCodes.NOT_FOUND, `${source} does not exist on the host`);
  });
  if (info.isFile() || info.isDirectory()) return info;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `${source} is a ${typeName(info)}; only regular files and folders can be copied`,
  );
}

/** `.` and the paths of the files, folders and symlinks under `root`, each starting with `./`. */
async function treeNames(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const kept = entries.filter(
    (entry) => entry.isFile() || entry.isDirectory() || entry.isSymbolicLink(),
  );
  return [".", ...kept.map((entry) => `./${relative(root, join(entry.parentPath, entry.name))}`)];
}

function typeName(info: Stats): string {
  if (info.isSocket()) return "socket";
  if (info.isFIFO()) return "FIFO";
  if (info.isCharacterDevice()) return "character device";
  if (info.isBlockDevice()) return "block device";
  return "special file";
}

/** Where data from the guest goes: beside `target` until it is whole, then into its place. */
export abstract class HostSink {
  protected readonly target: string;
  protected readonly staging: string;
  protected error: Error | undefined;

  protected constructor(target: string) {
    this.target = target;
    this.staging = join(
      dirname(target),
      `.${basename(target)}.corral-${randomBytes(6).toString("hex")}`,
    );
  }

  /** The sink for a header line from the guest (`f<mode>` or `d`); none for anything else. */
  static open(header: string, target: string): HostSink | undefined {
    if (header === "d") return new TreeSink(target);
    if (/^f[0-7]+$/.test(header)) return new FileSink(target, Number.parseInt(header.slice(1), 8));
    return undefined;
  }

  abstract write(bytes: Buffer): void;

  /** Writes `bytes`, then waits until the sink takes more: for a reader that can wait. */
  async writeWhenReady(bytes: Buffer): Promise<void> {
    this.write(bytes);
    const stream = this.stream;
    if (!this.error && stream?.writableNeedDrain) await once(stream, "drain").catch(() => {});
  }

  /** Where the bytes go, for `writeWhenReady`. */
  protected abstract get stream(): Writable | undefined;

  /** Puts the data in place; throws when writing it failed. */
  abstract commit(): Promise<SourceKind>;

  /** Removes what was written; harmless after commit. */
  abstract discard(): Promise<void>;

  protected failed(action: string, cause: unknown): CorralError {
    return new CorralError(
      ErrorCodes.HOST_COMMAND_FAILED,
      `${action} ${this.target} on the host failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

class FileSink extends HostSink {
  readonly #stream: WriteStream;

  constructor(target: string, mode: number) {
    super(target);
    this.#stream = createWriteStream(this.staging, { mode });
    this.#stream.on("error", (error) => {
      this.error ??= error;
    });
  }

  write(bytes: Buffer): void {
    if (!this.error) this.#stream.write(bytes);
  }

  protected get stream(): Writable {
    return this.#stream;
  }

  async commit(): Promise<SourceKind> {
    await new Promise<void>((resolve) => this.#stream.end(resolve));
    if (this.error) throw this.failed("writing", this.error);
    const existing = await lstat(this.target).catch(() => undefined);
    if (existing?.isDirectory()) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${this.target} is a folder on the host; give the path the file should have`,
      );
    }
    await rename(this.staging, this.target).catch((error: unknown) => {
      throw this.failed("writing", error);
    });
    return "file";
  }

  async discard(): Promise<void> {
    this.#stream.destroy();
    await rm(this.staging, { force: true });
  }
}

class TreeSink extends HostSink {
  readonly #tar: ChildProcess;
  readonly #exited: Promise<number | null>;
  #stderr = "";

  constructor(target: string) {
    super(target);
    try {
      mkdirSync(this.staging);
    } catch (error) {
      this.error = error as Error;
    }
    this.#tar = spawn(
      "tar",
      ["-x", "-f", "-", "-C", this.staging, "--no-same-owner", "--no-same-permissions"],
      { stdio: ["pipe", "ignore", "pipe"] },
    );
    this.#tar.stdin?.on("error", () => {});
    this.#tar.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-2000);
    });
    this.#exited = new Promise((resolve) => {
      this.#tar.on("error", (error) => {
        this.error ??= error;
        resolve(null);
      });
      this.#tar.on("close", (code) => resolve(code));
    });
  }

  write(bytes: Buffer): void {
    if (!this.error) this.#tar.stdin?.write(bytes);
  }

  protected get stream(): Writable | undefined {
    return this.#tar.stdin ?? undefined;
  }

  async commit(): Promise<SourceKind> {
    this.#tar.stdin?.end();
    const code = await this.#exited;
    if (this.error) throw this.failed("extracting into", this.error);
    if (code !== 0) throw this.failed("extracting into", new Error(this.#stderr.trim()));
    const existing = await stat(this.target).catch(() => undefined);
    if (!existing) {
      await rename(this.staging, this.target);
    } else if (existing.isDirectory()) {
      await cp(this.staging, this.target, { recursive: true, force: true, verbatimSymlinks: true });
      await rm(this.staging, { recursive: true, force: true });
    } else {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${this.target} exists on the host and is not a folder`,
      );
    }
    return "directory";
  }

  async discard(): Promise<void> {
    if (this.#tar.exitCode === null && this.#tar.signalCode === null) this.#tar.kill("SIGKILL");
    await this.#exited;
    await rm(this.staging, { recursive: true, force: true });
  }
}
