// Runs a short host program to completion and returns its output; failures carry its stderr.

import { spawn } from "node:child_process";
import { CorralError, ErrorCodes } from "../errors.ts";

export interface RunProgramOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Bytes written to the program's stdin. */
  input?: string | Buffer;
}

export interface RunProgramResult {
  stdout: string;
  stderr: string;
}

/** Runs `file args…`; throws CORRAL_HOST_COMMAND_FAILED with its stderr when it exits non-zero. */
export function runProgram(
  file: string,
  args: readonly string[],
  options: RunProgramOptions = {},
): Promise<RunProgramResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      signal: options.signal,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
    if (child.stdin) {
      // A program may exit without reading its input; that is its exit status's business.
      child.stdin.on("error", () => {});
      child.stdin.end(options.input);
    }
    child.on("error", (error) => {
      reject(
        new CorralError(ErrorCodes.HOST_COMMAND_FAILED, `${file}: ${error.message}`, {
          cause: error,
        }),
      );
    });
    child.on("close", (code, signal) => {
      const result = {
        stdout: Buffer.concat(stdout).toString(),
        stderr: Buffer.concat(stderr).toString(),
      };
      if (code === 0) return resolve(result);
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const tail = result.stderr.trim().split("\n").slice(-20);
      reject(
        new CorralError(ErrorCodes.HOST_COMMAND_FAILED, `${[file, ...args].join(" ")} ${how}`, {
          details: tail[0] ? tail.map((line) => `  | ${line}`) : [],
        }),
      );
    });
  });
}
