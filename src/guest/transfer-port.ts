// File contents through the guest's `corral.xfer` virtio port: the bytes travel raw, beside the
// shell, while a shell command in the guest reads or writes the port. One transfer at a time.

import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { Socket } from "node:net";
import { pipeline } from "node:stream/promises";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes, GuestCommandError } from "../errors.ts";
import type { BackdoorShell, ExecResult } from "./backdoor-shell.ts";
import { ChunkReader } from "./chunk-reader.ts";
import { shellQuote } from "./shell-quote.ts";

/** Shell variable the prelude sets to the port's device node. */
const PORT_VARIABLE = '"$__corral_xfer"';

export class TransferPort {
  readonly #socket: Socket;
  readonly #reader: ChunkReader;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(socket: Socket) {
    this.#socket = socket;
    this.#reader = new ChunkReader("transfer port", socket);
  }

  /** Copies the host file `source` to `target` in the guest. */
  toGuest(
    shell: BackdoorShell,
    source: string,
    target: string,
    deadline: Deadline,
    describe: () => string[],
  ): Promise<void> {
    return this.#serially(async () => {
      const { size } = await stat(source);
      const command = `mkdir -p "$(dirname ${shellQuote(target)})" && head -c ${size} ${PORT_VARIABLE} > ${shellQuote(target)}`;
      const sending = pipeline(createReadStream(source), this.#socket, {
        end: false,
        signal: deadline.signal,
      });
      const [result] = await Promise.all([shell.exec(command, deadline, describe), sending]);
      if (result.exitCode !== 0)
        throw failed(`copying ${source} to ${target} in the guest failed`, command, result);
    });
  }

  /** Copies the guest file `source` to the host file `target`; returns its size in bytes. */
  toHost(
    shell: BackdoorShell,
    source: string,
    target: string,
    deadline: Deadline,
    describe: () => string[],
  ): Promise<number> {
    return this.#serially(async () => {
      const sizeCommand = `stat -L -c %s ${shellQuote(source)}`;
      const sized = await shell.exec(sizeCommand, deadline, describe);
      const size = Number(sized.stdout.toString().trim());
      if (sized.exitCode !== 0 || !Number.isInteger(size)) {
        throw failed(`cannot read ${source} in the guest`, sizeCommand, sized);
      }
      const file = createWriteStream(target);
      let remaining = size;
      const receiving =
        size === 0
          ? Promise.resolve()
          : this.#reader.read(deadline, describe, (chunk) => {
              const take = chunk.subarray(0, remaining);
              remaining -= take.length;
              file.write(take);
              return remaining === 0
                ? { value: undefined, rest: chunk.subarray(take.length) }
                : undefined;
            });
      const command = `cat ${shellQuote(source)} > ${PORT_VARIABLE}`;
      const [result] = await Promise.all([shell.exec(command, deadline, describe), receiving]);
      await new Promise<void>((resolve, reject) =>
        file.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
      if (result.exitCode !== 0)
        throw failed(`copying ${source} out of the guest failed`, command, result);
      return size;
    });
  }

  #serially<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(fn, fn);
    this.#queue = result.catch(() => undefined);
    return result.catch((error: unknown) => {
      if (error instanceof CorralError) throw error;
      throw new CorralError(
        ErrorCodes.HOST_COMMAND_FAILED,
        `file transfer failed: ${String(error)}`,
        { cause: error },
      );
    });
  }
}

function failed(message: string, command: string, result: ExecResult): GuestCommandError {
  const { exitCode, stdout, stderr } = result;
  return new GuestCommandError(message, {
    command,
    exitCode,
    stdout: stdout.toString(),
    stderr: stderr.toString(),
  });
}
