// The transfer disk scripts' host-side parsing, and the requests their dd makes.

import { describe, expect, it } from "vitest";
import {
  diskToGuestScript,
  diskToHostScript,
  parseDiskHeader,
  parseTarBytes,
} from "../../../src/guest/transfer-disk-scripts.ts";

describe("transfer disk scripts", () => {
  it("parses every header a copy out prints", () => {
    expect(parseDiskHeader("corral-xfer f644 1234\nabc  -\n")).toEqual({
      kind: "f",
      detail: "644",
      bytes: 1234,
    });
    expect(parseDiskHeader("corral-xfer d\n")).toEqual({ kind: "d", detail: "" });
    expect(parseDiskHeader("corral-xfer -\n")).toEqual({ kind: "-", detail: "" });
    expect(parseDiskHeader("corral-xfer xcharacter special file\n")).toEqual({
      kind: "x",
      detail: "character special file",
    });
    expect(parseDiskHeader("something else\n")).toBeUndefined();
  });

  it("reads the archive's length from tar's totals", () => {
    expect(parseTarBytes("Total bytes written: 10240 (10KiB, 9.8MiB/s)\n")).toBe(10240);
    expect(parseTarBytes("tar: x: Cannot open\n")).toBeUndefined();
  });

  it("reads whole sectors from the disk and cuts the file back to its size", () => {
    const script = diskToGuestScript({
      nonce: "n",
      isDirectory: false,
      size: 1000,
      mode: 0o640,
      target: "/root/a b/x",
    });
    expect(script).toContain("iflag=direct,count_bytes count=1024");
    expect(script).toContain("truncate -s 1000");
    expect(script).toContain("chmod 640");
    expect(script).toContain("'/root/a b/.corral-copy-n'");
    expect(script).not.toContain("sha256sum");
  });

  it("hashes the source beside the copy out only when asked", () => {
    expect(diskToHostScript("/x")).not.toContain("sha256sum");
    expect(diskToHostScript("/x", true)).toContain('sha256sum <"$s" &');
  });
});
