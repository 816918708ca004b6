// The control lines a relay reads (interactive-exec.ts): stdin bytes escaped so that bash's
// printf %b gives them back, the other lines, and what is refused. The relay itself runs in the
// guest: test/integration/guest-ops.test.ts and Machine.spawn's uses.

import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { controlText, relayScript, signalName } from "../../../src/guest/interactive-exec.ts";

describe("controlText", () => {
  it("escapes stdin so that bash's printf %b gives back every byte", () => {
    const bytes = Buffer.from([0, 1, 10, 13, 0x5c, 0x25, 0x27, 0x41, 0x7f, 0xff]);
    const line = controlText("k", { kind: "stdin", bytes });
    expect(line).toBe("k d\\x00\\x01\\x0a\\x0d\\x5c%'A\\x7f\\xff\n");
    const payload = line.slice("k d".length, -1);
    const back = execFileSync("bash", ["-c", 'printf "%b" "$1"', "bash", payload]);
    expect(Buffer.compare(back, bytes)).toBe(0);
  });

  it("splits long stdin into lines of at most 4 KiB of bytes", () => {
    const text = controlText("k", { kind: "stdin", bytes: Buffer.alloc(10_000, 0x61) });
    expect(
      text
        .split("\n")
        .filter(Boolean)
        .map((line) => line.length),
    ).toEqual([4096 + 3, 4096 + 3, 1808 + 3]);
  });

  it("writes eof, signals, sizes and the end", () => {
    expect(controlText("k", { kind: "eof" })).toBe("k e\n");
    expect(controlText("k", { kind: "signal", signal: "sigterm" })).toBe("k sTERM\n");
    expect(controlText("k", { kind: "resize", columns: 120, rows: 40 })).toBe("k r120 40\n");
    expect(controlText("k", { kind: "end" })).toBe("k q\n");
  });

  it("refuses what is not a signal or a terminal size", () => {
    for (const signal of ["", "TERM; rm -rf /", "-9", "SIG"]) {
      expect(() => signalName(signal)).toThrow(/is not a signal/);
    }
    expect(signalName("9")).toBe("9");
    expect(signalName("RTMIN+3")).toBe("RTMIN+3");
    expect(() => controlText("k", { kind: "resize", columns: 0, rows: 10 })).toThrow(/columns/);
    expect(() =>
      relayScript("x", { key: "k", jobNonce: "n", tty: { columns: 80, rows: 1.5 } }),
    ).toThrow(/rows/);
  });
});

describe("relayScript", () => {
  it("is bash that parses", () => {
    for (const tty of [undefined, { columns: 80, rows: 24 }]) {
      const script = relayScript("echo 'hi' \"$x\"", {
        key: "0123456789abcdef",
        jobNonce: "n",
        tty,
      });
      expect(() => execFileSync("bash", ["-n", "-c", script])).not.toThrow();
    }
  });
});
