// File helpers for Windows guests: path validation, the exact scripts, and Get-Item's and
// Get-FileHash's output parsed. Outputs are hand-written with FileInfo/DirectoryInfo property
// names (FullName, Length, Mode, Attributes, LastWriteTimeUtc) and Get-FileHash's Hash
// (https://learn.microsoft.com/en-us/powershell/module/microsoft.powershell.utility/get-filehash).
// Not verified on a real Windows guest.

import { describe, expect, it } from "vitest";
import {
  makeDirectoryScript,
  moveFileScript,
  parseFileStat,
  parseSha256,
  removeScript,
  sha256Script,
  statScript,
  validateWindowsPath,
} from "../../../../src/guest/windows/files.ts";
import { payloadScript } from "../../../helpers/powershell.ts";

describe("validateWindowsPath", () => {
  it("takes drive-letter and UNC paths, either slash", () => {
    for (const path of [
      "C:\\",
      "C:\\Users\\corral\\a b.txt",
      "d:/data/x",
      "\\\\server\\share\\x",
    ]) {
      expect(() => validateWindowsPath(path)).not.toThrow();
    }
  });

  it("refuses relative paths, '..' components and NUL", () => {
    for (const path of [
      "",
      "x.txt",
      "C:x.txt",
      "\\Windows",
      "\\\\server",
      "C:\\a\\..\\b",
      "C:/a/..",
      "C:\\a\0",
    ]) {
      expect(() => validateWindowsPath(path), JSON.stringify(path)).toThrow(
        expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
      );
    }
  });
});

describe("file scripts", () => {
  it("make a folder with its parents through .NET (literal, nothing when it exists)", () => {
    expect(payloadScript(makeDirectoryScript("C:\\data\\[x]\\y"))).toBe(
      "[void][IO.Directory]::CreateDirectory('C:\\data\\[x]\\y')",
    );
  });

  it("stat with Get-Item -LiteralPath, hidden files included", () => {
    expect(payloadScript(statScript("C:\\it's.txt"))).toBe(
      [
        "$item = Get-Item -LiteralPath 'C:\\it''s.txt' -Force",
        "$stat = $item | Select-Object -Property FullName, PSIsContainer, @{ Name = 'Length'; Expression = { if ($_.PSIsContainer) { 0 } else { $_.Length } } }, Mode, @{ Name = 'Attributes'; Expression = { \"$($_.Attributes)\" } }, @{ Name = 'LastWriteTimeUtc'; Expression = { $_.LastWriteTimeUtc.ToString('o') } }",
        "ConvertTo-Json -InputObject $stat -Depth 2 -Compress",
      ].join("\n"),
    );
  });

  it("remove, recursively only when asked", () => {
    expect(payloadScript(removeScript("C:\\tmp\\a*"))).toBe(
      "Remove-Item -LiteralPath 'C:\\tmp\\a*' -Force",
    );
    expect(payloadScript(removeScript("C:\\tmp\\d", { recursive: true }))).toBe(
      "Remove-Item -LiteralPath 'C:\\tmp\\d' -Force -Recurse",
    );
  });

  it("rename over an existing file with File.Replace, else File.Move", () => {
    expect(payloadScript(moveFileScript("C:\\tmp\\.x.part", "C:\\tmp\\x"))).toBe(
      [
        "$from = (Get-Item -LiteralPath 'C:\\tmp\\.x.part' -Force).FullName",
        "$to = 'C:\\tmp\\x'",
        "if ([IO.File]::Exists($to)) { [IO.File]::Replace($from, $to, [NullString]::Value) } else { [IO.File]::Move($from, $to) }",
      ].join("\n"),
    );
  });

  it("hash with Get-FileHash", () => {
    expect(payloadScript(sha256Script("C:\\x"))).toBe(
      "ConvertTo-Json -InputObject (Get-FileHash -LiteralPath 'C:\\x' -Algorithm SHA256).Hash -Compress",
    );
  });

  it("refuse bad paths in every script", () => {
    for (const build of [
      () => makeDirectoryScript("tmp"),
      () => statScript("tmp"),
      () => removeScript("C:\\..\\x"),
      () => moveFileScript("C:\\a", "b"),
      () => sha256Script(""),
    ]) {
      expect(build).toThrow(expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }));
    }
  });
});

describe("parsers", () => {
  it("read a file's and a folder's metadata", () => {
    expect(
      parseFileStat(
        '{"FullName":"C:\\\\Windows\\\\win.ini","PSIsContainer":false,"Length":92,"Mode":"-a----","Attributes":"Archive","LastWriteTimeUtc":"2019-12-07T09:12:42.7290000Z"}',
      ),
    ).toEqual({
      path: "C:\\Windows\\win.ini",
      isDirectory: false,
      sizeBytes: 92,
      mode: "-a----",
      attributes: "Archive",
      mtime: "2019-12-07T09:12:42.729Z",
    });
    expect(
      parseFileStat(
        '{"FullName":"C:\\\\ProgramData","PSIsContainer":true,"Length":0,"Mode":"d--h--","Attributes":"Hidden, Directory, NotContentIndexed","LastWriteTimeUtc":"2024-05-01T12:00:00.0000000Z"}',
      ),
    ).toMatchObject({
      isDirectory: true,
      sizeBytes: 0,
      attributes: "Hidden, Directory, NotContentIndexed",
    });
  });

  it("read the SHA-256 in lower case, and refuse what is not one", () => {
    const hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    expect(parseSha256(`"${hash}"\r\n`)).toBe(hash.toLowerCase());
    expect(() => parseSha256('"xyz"')).toThrow(
      expect.objectContaining({ code: "CORRAL_GUEST_OUTPUT_INVALID" }),
    );
  });
});
