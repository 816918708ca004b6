// `corral run -- <command…>`: boot an image, run one command in the guest, print its output,
// stop the VM and exit with the command's exit code.

import type { Command } from "commander";
import { shellJoin } from "../guest/shell-quote.ts";
import type { Accelerator } from "../host/accelerator.ts";
import { ensureImage } from "../images/build-image.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import { Machine } from "../machine/machine.ts";
import { interruptSignal } from "./interrupt.ts";
import { parseAccel, parseSeconds } from "./parse.ts";
import { progressRenderer } from "./progress-renderer.ts";

interface RunOptions {
  image: string;
  backend?: string;
  accel?: Accelerator;
  timeout?: number;
  bootTimeout: number;
  keepState?: boolean;
  verbose?: boolean;
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .summary("boot an image, run a command in the guest, exit with its exit code")
    .description(
      "Boot an image, run a command in the guest, print its stdout and stderr, stop the VM and " +
        "exit with the command's exit code. One argument is a shell command line " +
        "(`corral run -- 'dmesg | tail'`); several are a program and its arguments, each passed " +
        "as is (`corral run -- ls -l /`).",
    )
    .addHelpText(
      "after",
      "\nExit status: the guest command's; 2 for bad usage; 125 when corral itself fails " +
        "(image, boot, timeout); 130 when interrupted.",
    )
    .argument("<command...>", "the command to run in the guest (after --)")
    .option("--image <image>", "recipe name or image id; built first if needed", DEFAULT_RECIPE)
    .option(
      "--backend <name>",
      "qemu (default), firecracker or cloud-hypervisor (`corral doctor` says which can run here)",
    )
    .option(
      "--accel <accel>",
      "kvm or tcg (default: KVM when it works, from `corral doctor`)",
      parseAccel,
    )
    .option(
      "--timeout <seconds>",
      "limit for the command itself (any size; Infinity for none)",
      parseSeconds,
    )
    .option(
      "--boot-timeout <seconds>",
      "limit for booting to the backdoor shell",
      parseSeconds,
      120,
    )
    .option("--keep-state", "keep the VM's state folder (printed on stderr)")
    .option("-v, --verbose", "print boot progress and the guest's console on stderr")
    .action(async (words: string[], options: RunOptions) => {
      process.exitCode = await run(words, options);
    });
}

async function run(words: string[], options: RunOptions): Promise<number> {
  const signal = interruptSignal();
  const say = (line: string) => {
    if (options.verbose || process.stderr.isTTY) process.stderr.write(`corral: ${line}\n`);
  };
  const renderer = progressRenderer();
  try {
    await ensureImage(options.image, { signal, onProgress: renderer.listener });
  } finally {
    renderer.close();
  }
  const command = words.length === 1 ? (words[0] ?? "") : shellJoin(words);
  await using machine = new Machine({
    image: options.image,
    ...(options.backend ? { backend: options.backend } : {}),
    ...(options.accel ? { accel: options.accel } : {}),
    keepState: options.keepState ?? false,
  });
  const started = performance.now();
  await machine.start();
  say(
    `booting ${options.image} with ${machine.accelerator?.accelerator} (${machine.accelerator?.reason})`,
  );
  if (options.verbose)
    machine.onConsoleLine((line) => process.stderr.write(`  console | ${line}\n`));
  await machine.waitForShell({ timeout: options.bootTimeout * 1000, signal });
  say(`shell ready after ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const result = await machine.execute(command, {
    ...(options.timeout !== undefined ? { timeout: options.timeout * 1000 } : {}),
    signal,
    onStdout: (chunk) => process.stdout.write(chunk),
    onStderr: (chunk) => process.stderr.write(chunk),
  });
  if (options.keepState) process.stderr.write(`corral: state kept in ${machine.stateDir}\n`);
  return result.exitCode;
}
