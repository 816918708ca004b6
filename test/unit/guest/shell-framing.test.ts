import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { newNonce, quoteAnsiC, ReplyDecoder } from "../../../src/guest/shell-framing.ts";

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

function frame(nonce: string, stdout: Buffer, stderr: Buffer, exitCode: number): Buffer {
  return Buffer.concat([
    stdout,
    stderr.length > 0 ? Buffer.concat([Buffer.from(`${nonce}E`), stderr]) : Buffer.alloc(0),
    Buffer.from(`${nonce}X${exitCode}\n`),
  ]);
}

describe("ReplyDecoder", () => {
  it("decodes a reply split at every possible byte boundary", () => {
    const nonce = newNonce();
    const stdout = Buffer.from("out\0put\n");
    const stderr = Buffer.from("err\n");
    const reply = Buffer.concat([frame(nonce, stdout, stderr, 3), Buffer.from("next")]);
    for (let cut = 1; cut < reply.length; cut++) {
      const decoder = new ReplyDecoder(nonce);
      expect(decoder.push(reply.subarray(0, cut))?.result.exitCode ?? "pending").toBe(
        cut >= reply.length - 4 ? 3 : "pending",
      );
      const done = cut >= reply.length - 4 ? undefined : decoder.push(reply.subarray(cut));
      if (done) {
        expect(done.result).toEqual({ exitCode: 3, stdout, stderr });
        expect(done.rest.toString()).toBe("next");
      }
    }
  });

  it("streams stdout before the reply is complete, holding back only a possible marker", () => {
    const nonce = newNonce();
    const seen: Buffer[] = [];
    const decoder = new ReplyDecoder(nonce, (chunk) => seen.push(chunk));
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
    const reply = frame(nonce, stdout, Buffer.alloc(0), 0);
    const decoder = new ReplyDecoder(nonce);
    let done: ReturnType<ReplyDecoder["push"]>;
    for (let at = 0; at < reply.length; at += 4093)
      done = decoder.push(reply.subarray(at, at + 4093));
    expect(done?.result.stdout.equals(stdout)).toBe(true);
  });

  it("handles 100 MB in 64 KiB chunks in linear time", () => {
    const nonce = newNonce();
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const decoder = new ReplyDecoder(nonce);
    const started = performance.now();
    for (let i = 0; i < 1600; i++) decoder.push(chunk);
    const done = decoder.push(Buffer.from(`${nonce}X0\n`));
    expect(done?.result.stdout.length).toBe(1600 * 64 * 1024);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
