// `corral vm exec <vm> -- cmd…`: runs a command in a VM's guest through the daemon, streaming its
// output over the exec WebSocket when the VM's channel can (else one request that answers once
// the command has ended), stdin forwarded, the command's exit code passed through.

import type { Command } from "commander";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { ApiClient, ApiTarget } from "./api-client.ts";
import { type ApiFlags, callApi, segment, withApiOptions } from "./api-command.ts";
import { ApiSocket } from "./api-socket.ts";
import { EXIT_INTERRUPTED } from "./interrupt.ts";
import { collectLabel, parsePositiveInteger } from "./parse.ts";

interface ExecFlags extends ApiFlags {
  tty?: boolean;
  interactive?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  user?: string;
  timeout?: number;
}

interface Capabilities {
  channel: string;
  streaming: boolean;
  pty: boolean;
}

interface OneShotReply {
  exitCode: number;
  stdout: string;
  stderr: string;
  encoding: "utf8" | "base64";
  isTimedOut: boolean;
}

export function registerVmExec(vm: Command): void {
  withApiOptions(
    vm
      .command("exec")
      .description(
        "run a command in a VM's guest: its output as it comes, its exit code as corral's",
      )
      .argument("<vm>", "the VM's name or id")
      .argument(
        "<command...>",
        "one word: a command line for the guest's shell; several: a program and its arguments",
      )
      .option("-t, --tty", "a pseudo-terminal in the guest (for shells, top, editors)")
      .option("-i, --interactive", "forward stdin even when it is a terminal")
      .option(
        "-e, --env <key=value>",
        "a variable for the command (repeat for several)",
        collectLabel,
      )
      .option("--cwd <dir>", "the command's working folder in the guest")
      .option("--user <user>", "run as this guest user")
      .option(
        "--timeout <ms>",
        "kill the command in the guest after this many ms",
        parsePositiveInteger,
      )
      .addHelpText(
        "after",
        "\nPut -- before the command when it has options of its own. Stdin is forwarded when it " +
          "is not a terminal, or with -i. Exit status: the command's; 125 when corral itself " +
          "failed (the VM does not run, the daemon refused); 130 interrupted. Over a channel " +
          "that cannot stream (qemu-ga) the output comes once the command has ended.\n\nExamples:\n" +
          "  corral vm exec web -- uname -a\n" +
          "  corral vm exec web 'systemctl is-active nginx && journalctl -n 5'\n" +
          "  echo hello | corral vm exec web -- cat\n" +
          "  corral vm exec web -t -i -- bash\n" +
          "  corral vm exec web -e LANG=C --cwd /srv --timeout 60000 -- make test",
      ),
  ).action((idOrName: string, words: string[], flags: ExecFlags) =>
    callApi(flags, async (api) => {
      const capabilities = await api.request<Capabilities>(
        "GET",
        `/v1/vms/${segment(idOrName)}/guest/capabilities`,
      );
      const fields = {
        ...(words.length === 1 ? { command: words[0] } : { argv: words }),
        ...(flags.env && { env: flags.env }),
        ...(flags.cwd !== undefined && { cwd: flags.cwd }),
        ...(flags.user !== undefined && { user: flags.user }),
        ...(flags.timeout !== undefined && { timeoutMs: flags.timeout }),
      };
      const forwardStdin = !process.stdin.isTTY || flags.interactive === true;
      process.exitCode = capabilities.streaming
        ? await streamed(api.target, idOrName, fields, { tty: flags.tty === true, forwardStdin })
        : await oneShot(api, idOrName, fields, forwardStdin);
    }),
  );
}

/** Runs the command over the exec WebSocket; resolves with its exit code. */
async function streamed(
  target: ApiTarget,
  idOrName: string,
  fields: object,
  options: { tty: boolean; forwardStdin: boolean },
): Promise<number> {
  let exitCode: number | undefined;
  const socket = await ApiSocket.open(target, `/v1/vms/${segment(idOrName)}/guest/execute`, {
    onFrame: (frame) => {
      const data = typeof frame.data === "string" ? Buffer.from(frame.data, "base64") : undefined;
      if (frame.type === "stdout" && data) process.stdout.write(data);
      else if (frame.type === "stderr" && data) process.stderr.write(data);
      else if (frame.type === "exit") exitCode = Number(frame.exitCode);
    },
  });
  const { stdin, stdout } = process;
  const isRaw = options.tty && options.forwardStdin && stdin.isTTY;
  // A terminal whose size was never set says 0 × 0: the guest's default (80 × 24) then.
  const size = () =>
    stdout.isTTY && stdout.columns > 0 && stdout.rows > 0
      ? { columns: stdout.columns, rows: stdout.rows }
      : undefined;
  socket.send({ ...fields, ...(options.tty && { tty: true, ...size() }) });
  const onResize = () => {
    const now = size();
    if (now) socket.send({ type: "resize", ...now });
  };
  const onData = (chunk: Buffer) => socket.send({ type: "stdin", data: chunk.toString("base64") });
  const onEnd = () => socket.send({ type: "eof" });
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) {
      socket.destroy();
      process.exit(EXIT_INTERRUPTED);
    }
    socket.send({ type: "signal", signal });
  };
  if (options.tty && stdout.isTTY) stdout.on("resize", onResize);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  if (options.forwardStdin) {
    if (isRaw) stdin.setRawMode(true);
    stdin.on("data", onData);
    stdin.once("end", onEnd);
  } else {
    onEnd();
  }
  try {
    const closed = await socket.closed;
    if (closed.error) throw closed.error;
    if (exitCode === undefined) {
      throw new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `the daemon closed the exec socket before the command ended (${closed.code} ${closed.reason})`,
      );
    }
    return exitCode;
  } finally {
    if (isRaw) stdin.setRawMode(false);
    stdin.off("data", onData);
    stdin.off("end", onEnd);
    stdin.pause();
    stdout.off("resize", onResize);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Runs the command with one request (a channel that cannot stream); resolves with its exit code. */
async function oneShot(
  api: ApiClient,
  idOrName: string,
  fields: object,
  forwardStdin: boolean,
): Promise<number> {
  const stdin = forwardStdin ? await readAll(process.stdin) : undefined;
  const reply = await api.request<OneShotReply>(
    "POST",
    `/v1/vms/${segment(idOrName)}/guest/execute`,
    { body: { ...fields, ...(stdin && stdin.length > 0 && { stdin: stdin.toString("base64") }) } },
  );
  process.stdout.write(Buffer.from(reply.stdout, reply.encoding));
  process.stderr.write(Buffer.from(reply.stderr, reply.encoding));
  if (reply.isTimedOut) {
    process.stderr.write("corral: the command ran past --timeout and was killed in the guest\n");
  }
  return reply.exitCode;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
