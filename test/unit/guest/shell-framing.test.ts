import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { ConsoleEvents } from "../../../src/guest/console-events.ts";
import {
  commandLine,
  isSimpleCommand,
  MarkerSplitter,
  newNonce,
  newToken,
  OutputCollector,
  quoteAnsiC,
} from "../../../src/guest/shell-framing.ts";

/** What bash makes of a quoted word: printf it back byte for byte. */
function bashRoundTrip(quoted: string): Buffer {
  return spawnSync("bash", ["-c", `printf '%s' ${quoted}`]).stdout;
}

describe("quoteAnsiC", () => {
  it.each([
    ["plain", "echo hello"],
    ["quotes", `it's "quoted" \\ back`],
    ["newlines and tabs", "a\nb\tc\r\n"],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal the guest shell must not expand
    ["substitutions stay literal", "$(touch /tmp/x) `id` ${HOME} $HOME"],
    ["utf-8", "grüße 🚀"],
    ["control bytes", "\x01\x1b[31m\x7f"],
  ])("round-trips %s through bash", (_, text) => {
    expect(bashRoundTrip(quoteAnsiC(text)).toString()).toBe(text);
  });

  it("refuses a NUL byte with a typed error", () => {
    expect(() => quoteAnsiC("a\0b")).toThrow(
      expect.objectContaining({ code: ErrorCodes.GUEST_COMMAND_INVALID }),
    );
  });
});

describe("isSimpleCommand", () => {
  it.each([
    "true",
    "systemctl is-active sshd.service",
    "ls -l /",
    "dd if=/dev/zero of=/x bs=1M",
    "test -e /tmp/x",
  ])("runs %j without a subshell", (command) => expect(isSimpleCommand(command)).toBe(true));
  it.each([
    "cd /",
    "exit 3",
    "FOO=1 env",
    "echo $HOME",
    "echo a; echo b",
    "ls *",
    "cat < /etc/passwd",
    "echo 'quoted'",
    "export X",
    "a && b",
    "__corral_end x 0",
    "",
  ])("runs %j in a subshell", (command) => expect(isSimpleCommand(command)).toBe(false));
});

describe("commandLine", () => {
  it("runs simple commands in the shell, the rest in a subshell, and limited ones as a job", () => {
    const nonce = newNonce();
    expect(commandLine(nonce, "true")).toBe(`__corral_fast ${nonce} $'true'\n`);
    expect(commandLine(nonce, "a; b")).toBe(`__corral_exec ${nonce} $'a; b'\n`);
    expect(commandLine(nonce, "a; b", { inShell: true })).toBe(`__corral_fast ${nonce} $'a; b'\n`);
    expect(commandLine(nonce, "true", { limitMs: 1500.4 })).toBe(
      `__corral_limit ${nonce} 1500400 $'true'\n`,
    );
  });

  it("puts a leading line before the command, unframed", () => {
    const nonce = newNonce();
    expect(commandLine(nonce, "a; b", { inShell: true, leadingLine: "c" })).toBe(
      `c\n__corral_fast ${nonce} $'a; b'\n`,
    );
  });
});

describe("ConsoleEvents", () => {
  const nonce = newNonce();
  const token = newToken();
  const lines = [
    "Spawning backdoor root shell...",
    `__corral_ready_${token} `,
    `junk without a newline${nonce}X3`,
    `${nonce}T`,
    `${nonce}F`,
    `__corral_ready_${token} cannot open /dev/vport0p1 (corral.stdout): another process holds it;`,
    `__corral_died_${token}\r`,
    "anything else",
  ];
  const expected = [
    { kind: "banner" },
    { kind: "ready", token, problem: "" },
    { kind: "exited", nonce, exitCode: 3 },
    { kind: "killed", nonce },
    { kind: "not-started", nonce },
    {
      kind: "ready",
      token,
      problem: "cannot open /dev/vport0p1 (corral.stdout): another process holds it;",
    },
    { kind: "died", token },
  ];

  it("decodes every line, however the bytes are split", () => {
    const bytes = Buffer.from(`${lines.join("\n")}\n`);
    for (let cut = 1; cut < bytes.length; cut += 7) {
      const events = new ConsoleEvents();
      const seen = [...events.push(bytes.subarray(0, cut)), ...events.push(bytes.subarray(cut))];
      expect(seen).toEqual(expected);
    }
  });

  it("waits for the end of a line", () => {
    const events = new ConsoleEvents();
    expect(events.push(Buffer.from(`${nonce}X0`))).toEqual([]);
    expect(events.push(Buffer.from("\n"))).toEqual([{ kind: "exited", nonce, exitCode: 0 }]);
  });
});

describe("OutputCollector", () => {
  it("keeps at most maxBytes and passes everything on", () => {
    const seen: Buffer[] = [];
    const collector = new OutputCollector((chunk) => seen.push(chunk), 5);
    collector.add(Buffer.from("abc"));
    collector.add(Buffer.from("defg"));
    collector.add(Buffer.from("h"));
    expect(collector.result().toString()).toBe("abcde");
    expect(Buffer.concat(seen).toString()).toBe("abcdefgh");
    expect(collector.totalBytes).toBe(8);
    expect(collector.isOverflowed).toBe(true);
  });

  it("handles 100 MB in 64 KiB chunks in linear time through a MarkerSplitter", () => {
    const marker = newNonce();
    let bytes = 0;
    const splitter = new MarkerSplitter(marker, (part) => {
      bytes += part.length;
    });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const started = performance.now();
    for (let i = 0; i < 1600; i++) splitter.push(chunk);
    expect(splitter.push(Buffer.from(marker))?.length).toBe(0);
    expect(bytes).toBe(1600 * 64 * 1024);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("MarkerSplitter", () => {
  it("returns what follows the marker and passes on what precedes it", () => {
    const seen: Buffer[] = [];
    const splitter = new MarkerSplitter("END", (chunk) => seen.push(chunk));
    expect(splitter.push(Buffer.from("abcE"))).toBeUndefined();
    expect(splitter.push(Buffer.from("N"))).toBeUndefined();
    expect(splitter.push(Buffer.from("Dxyz"))?.toString()).toBe("xyz");
    expect(Buffer.concat(seen).toString()).toBe("abc");
  });
});
