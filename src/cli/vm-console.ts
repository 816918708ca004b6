// `corral vm console <vm>`: the VM's serial console in this terminal (raw mode), through the
// daemon's console WebSocket: recent output first, then both ways until Ctrl-] or the VM stops.

import type { Command } from "commander";
import { type ApiFlags, callApi, query, segment, withApiOptions } from "./api-command.ts";
import { ApiSocket } from "./api-socket.ts";
import { parseNonNegativeInteger } from "./parse.ts";

/** Ctrl-]: leaves the console, as in telnet and virsh. */
const ESCAPE = 0x1d;

export function registerVmConsole(vm: Command): void {
  withApiOptions(
    vm
      .command("console")
      .description("attach this terminal to a VM's serial console; Ctrl-] leaves")
      .argument("<vm>", "the VM's name or id")
      .option(
        "--replay-bytes <n>",
        "how much recent output to show first, in bytes (default 65536, at most 262144; 0: none)",
        parseNonNegativeInteger,
      )
      .addHelpText(
        "after",
        "\nKeys go to the guest as they are typed (the terminal is in raw mode); Ctrl-] leaves and " +
          "the VM runs on. The session also ends when the VM stops.\n\nExamples:\n" +
          "  corral vm console web\n  corral vm console web --replay-bytes 0",
      ),
  ).action((idOrName: string, flags: ApiFlags & { replayBytes?: number }) =>
    callApi(flags, async (api) => {
      const path = `/v1/vms/${segment(idOrName)}/console${query({ replayBytes: flags.replayBytes })}`;
      const socket = await ApiSocket.open(api.target, path, {
        onBytes: (chunk) => process.stdout.write(chunk),
      });
      const { stdin } = process;
      const isRaw = stdin.isTTY;
      if (isRaw) {
        process.stderr.write(`corral: ${idOrName}'s console; Ctrl-] leaves\r\n`);
        stdin.setRawMode(true);
      }
      const onData = (chunk: Buffer) => {
        const at = chunk.indexOf(ESCAPE);
        if (at < 0) return socket.sendBytes(chunk);
        if (at > 0) socket.sendBytes(chunk.subarray(0, at));
        socket.close();
      };
      stdin.on("data", onData);
      try {
        const closed = await socket.closed;
        if (closed.error) throw closed.error;
        if (closed.reason === "the VM stopped") {
          process.stderr.write(`\r\ncorral: ${idOrName} stopped\r\n`);
        }
      } finally {
        if (isRaw) stdin.setRawMode(false);
        stdin.off("data", onData);
        stdin.pause();
      }
    }),
  );
}
