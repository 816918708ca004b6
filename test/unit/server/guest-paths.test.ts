// The rules a guest path follows before a request reaches the guest.

import { describe, expect, it } from "vitest";
import { requireGuestPath } from "../../../src/server/routes/guest-paths.ts";

describe("requireGuestPath", () => {
  it("takes absolute paths in the guest's style", () => {
    for (const path of ["/", "/etc/hosts", "/a b/c..d/.hidden"]) {
      expect(requireGuestPath(path, "linux")).toBe(path);
    }
    for (const path of ["C:\\Windows\\win.ini", "d:/data", "\\\\server\\share\\file.txt"]) {
      expect(requireGuestPath(path, "windows")).toBe(path);
      expect(requireGuestPath(path)).toBe(path);
    }
  });

  it("refuses relative paths, '..' segments, NUL bytes and the other OS's style", () => {
    const cases: [string, "linux" | "windows" | undefined, string][] = [
      ["etc/hosts", undefined, "is not absolute"],
      ["./x", "linux", "is not absolute"],
      ["\\\\server", "windows", "is not absolute"],
      ["/srv/../etc", "linux", "has a '..' segment"],
      ["C:\\data\\..\\Windows", "windows", "has a '..' segment"],
      ["C:/data/../Windows", undefined, "has a '..' segment"],
      ["/a\0b", "linux", "holds a NUL byte"],
      ["C:\\x", "linux", "is not absolute for a Linux guest"],
      ["/etc/hosts", "windows", "is not absolute for a Windows guest"],
    ];
    for (const [path, os, problem] of cases) {
      expect(() => requireGuestPath(path, os), JSON.stringify(path)).toThrow(problem);
    }
  });
});
