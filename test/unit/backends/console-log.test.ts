// The serial console log: lines without escape sequences for logs and waits, and the latest raw
// bytes (a ring of 256 KiB) with each chunk passed on, for a terminal that replays them.

import { describe, expect, it } from "vitest";
import { CONSOLE_HISTORY_BYTES, ConsoleLog } from "../../../src/backends/console-log.ts";

describe("ConsoleLog", () => {
  it("keeps lines clean and the raw bytes as they came, partial line included", () => {
    const log = new ConsoleLog();
    const chunks: string[] = [];
    log.onData((chunk) => chunks.push(chunk.toString()));
    log.write(Buffer.from("\x1b[1mboot\x1b[0m\r\nlogin: "));
    expect(log.lines).toEqual(["boot"]);
    expect(log.recentBytes().toString()).toBe("\x1b[1mboot\x1b[0m\r\nlogin: ");
    expect(log.recentBytes(7).toString()).toBe("login: ");
    expect(chunks).toEqual(["\x1b[1mboot\x1b[0m\r\nlogin: "]);
  });

  it("keeps only the latest CONSOLE_HISTORY_BYTES", () => {
    const log = new ConsoleLog();
    for (let i = 0; i < 100; i++) log.write(Buffer.alloc(10_000, 97 + (i % 26)));
    log.write(Buffer.from("end"));
    const kept = log.recentBytes();
    expect(kept.length).toBe(CONSOLE_HISTORY_BYTES);
    expect(kept.subarray(-3).toString()).toBe("end");
    expect(log.recentBytes(CONSOLE_HISTORY_BYTES * 2).length).toBe(CONSOLE_HISTORY_BYTES);
    log.write(Buffer.alloc(CONSOLE_HISTORY_BYTES + 5, 122));
    expect(log.recentBytes().equals(Buffer.alloc(CONSOLE_HISTORY_BYTES, 122))).toBe(true);
  });
});
