import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import {
  isSimpleCommand,
  MarkerSplitter,
  newNonce,
  quoteAnsiC,
  StatusDecoder,
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

function marker(nonce: string, stdout: Buffer, exitCode: number): Buffer {
  return Buffer.concat([stdout, Buffer.from(`${nonce}X${exitCode}\n`)]);
}

describe("StatusDecoder", () => {
  it("decodes a reply split at every possible byte boundary", () => {
    const nonce = newNonce();
    const stdout = Buffer.from("out\0put\n");
    const reply = Buffer.concat([marker(nonce, stdout, 3), Buffer.from("next")]);
    for (let cut = 1; cut < reply.length; cut++) {
      const seen: Buffer[] = [];
      const decoder = new StatusDecoder(nonce, (chunk) => seen.push(chunk));
      const first = decoder.push(reply.subarray(0, cut));
      const done = first ?? decoder.push(reply.subarray(cut));
      expect(done?.exitCode).toBe(3);
      expect(Buffer.concat(seen)).toEqual(stdout);
      if (!first) expect(done?.rest.toString()).toBe("next");
    }
  });

  it("streams output before the reply is complete, holding back only a possible marker", () => {
    const nonce = newNonce();
    const seen: Buffer[] = [];
    const decoder = new StatusDecoder(nonce, (chunk) => seen.push(chunk));
    decoder.push(Buffer.from("x".repeat(1000)));
    expect(Buffer.concat(seen).length).toBe(1000);
    decoder.push(Buffer.from(`y${nonce.slice(0, 5)}`));
    expect(Buffer.concat(seen).toString()).toBe(`${"x".repeat(1000)}y`);
    decoder.push(Buffer.from("z"));
    expect(Buffer.concat(seen).toString()).toBe(`${"x".repeat(1000)}y${nonce.slice(0, 5)}z`);
  });

  it("keeps random binary output intact", () => {
    const nonce = newNonce();
    const stdout = randomBytes(1 << 20);
    const reply = marker(nonce, stdout, 0);
    const seen: Buffer[] = [];
    const decoder = new StatusDecoder(nonce, (chunk) => seen.push(chunk));
    let done: ReturnType<StatusDecoder["push"]>;
    for (let at = 0; at < reply.length; at += 4093)
      done = decoder.push(reply.subarray(at, at + 4093));
    expect(done?.exitCode).toBe(0);
    expect(Buffer.concat(seen).equals(stdout)).toBe(true);
  });

  it("handles 100 MB in 64 KiB chunks in linear time", () => {
    const nonce = newNonce();
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let bytes = 0;
    const decoder = new StatusDecoder(nonce, (part) => {
      bytes += part.length;
    });
    const started = performance.now();
    for (let i = 0; i < 1600; i++) decoder.push(chunk);
    expect(decoder.push(Buffer.from(`${nonce}X0\n`))?.exitCode).toBe(0);
    expect(bytes).toBe(1600 * 64 * 1024);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("rejects a malformed exit status", () => {
    const nonce = newNonce();
    const decoder = new StatusDecoder(nonce, () => {});
    expect(() => decoder.push(Buffer.from(`${nonce}Xoops\n`))).toThrow(/malformed exit status/);
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
