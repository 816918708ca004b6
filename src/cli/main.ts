#!/usr/bin/env node
// The `corral` command: parses arguments and hands each subcommand to the layer below.

import { Command, CommanderError } from "commander";
import { CorralError, type ErrorCode, ErrorCodes } from "../errors.ts";
import { packageVersion } from "../package-version.ts";
import { ApiError } from "./api-client.ts";
import { registerDoctor } from "./doctor.ts";
import { registerImage } from "./image.ts";
import { EXIT_INTERRUPTED } from "./interrupt.ts";
import { registerNetwork } from "./network.ts";
import { registerRun } from "./run.ts";
import { registerServe } from "./serve.ts";
import { registerSnapshot } from "./snapshot.ts";
import { registerTemplate } from "./template.ts";
import { registerTest } from "./test.ts";
import { registerVm } from "./vm.ts";

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
/**
 * `corral run` and `corral vm exec` exit with the guest command's code, so their own failures use
 * a code commands rarely do.
 */
const EXIT_RUN_FAILURE = 125;
/** Errors that mean the command line, a file it names or its configuration is wrong. */
const USAGE_CODES = new Set<ErrorCode>([
  ErrorCodes.INVALID_ARGUMENT,
  ErrorCodes.NOT_FOUND,
  ErrorCodes.CONFLICT,
  ErrorCodes.TEST_LOAD_FAILED,
  ErrorCodes.IMAGE_UNKNOWN,
]);

// `corral … | head`: a reader that goes away is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const program = new Command()
  .name("corral")
  .description("Boot, drive, snapshot and test real virtual machines")
  .version(packageVersion())
  .showHelpAfterError()
  .exitOverride();
registerDoctor(program);
registerImage(program);
registerNetwork(program);
registerRun(program);
registerServe(program);
registerSnapshot(program);
registerTemplate(program);
registerTest(program);
registerVm(program);

try {
  await program.parseAsync();
} catch (error) {
  process.exitCode = report(error);
}

function report(error: unknown): number {
  if (error instanceof CommanderError) {
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  const [command, subcommand] = process.argv.slice(2);
  const isRun = command === "run" || (command === "vm" && subcommand === "exec");
  // The daemon refused the call: its code and each detail on a line of its own; the command
  // line itself was fine, so this is a failure (1), not a usage error.
  if (error instanceof ApiError) {
    const details = error.details.map((line) => `  ${line}\n`).join("");
    process.stderr.write(`corral: ${error.summary} [${error.code}]\n${details}`);
    return isRun ? EXIT_RUN_FAILURE : EXIT_FAILURE;
  }
  if (error instanceof CorralError) {
    process.stderr.write(`corral: ${error.message}\n`);
    if (error.code === ErrorCodes.ABORTED) return EXIT_INTERRUPTED;
    if (USAGE_CODES.has(error.code)) return EXIT_USAGE;
    return isRun ? EXIT_RUN_FAILURE : EXIT_FAILURE;
  }
  process.stderr.write(
    `corral: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  return isRun ? EXIT_RUN_FAILURE : EXIT_FAILURE;
}
