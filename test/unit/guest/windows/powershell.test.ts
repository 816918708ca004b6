// The guest-exec payload for Windows PowerShell: exact arguments, the encoded script decoded
// back, quoting. Not verified on a real Windows guest (none can run here).

import { describe, expect, it } from "vitest";
import {
  decodePowerShellCommand,
  encodePowerShellCommand,
  MAX_COMMAND_LINE_CHARS,
  POWERSHELL_ERROR_TRAP,
  POWERSHELL_PRELUDE,
  powershellExec,
  psQuote,
  scriptOf,
} from "../../../../src/guest/windows/powershell.ts";

describe("powershellExec", () => {
  it("gives guest-exec powershell.exe, the fixed switches and the encoded script, output captured", () => {
    const args = powershellExec("Get-Date");
    expect(args).toEqual({
      path: "powershell.exe",
      arg: [
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
        expect.any(String),
      ],
      "capture-output": true,
    });
    expect(decodePowerShellCommand(args.arg[5] as string)).toBe(
      [
        "$ErrorActionPreference = 'Stop'",
        "$ProgressPreference = 'SilentlyContinue'",
        "[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false)",
        "$OutputEncoding = [Console]::OutputEncoding",
        "function Write-CorralError($record) {",
        '  $fields = [ordered]@{ message = $record.Exception.Message; type = $record.Exception.GetType().FullName; category = "$($record.CategoryInfo.Category)"; errorId = "$($record.FullyQualifiedErrorId)" }',
        "  [Console]::Error.WriteLine((ConvertTo-Json -InputObject @{ corralError = $fields } -Compress))",
        "}",
        "trap { Write-CorralError $_; exit 1 }",
        "Get-Date",
      ].join("\n"),
    );
    expect(scriptOf(args)).toBe("Get-Date");
  });

  it("leaves the trap out when asked, so a user's script handles its own errors", () => {
    const args = powershellExec("dir", { trapErrors: false });
    const text = decodePowerShellCommand(args.arg[5] as string);
    expect(text).toBe(`${POWERSHELL_PRELUDE}\ndir`);
    expect(text).not.toContain(POWERSHELL_ERROR_TRAP);
    expect(scriptOf(args)).toBe("dir");
  });

  it("encodes UTF-16LE in base64, as -EncodedCommand takes it (about_PowerShell_exe)", () => {
    expect(encodePowerShellCommand("dir")).toBe("ZABpAHIA");
    const text = "Write-Output 'Grüße, 日本, 😀'";
    const bytes = Buffer.from(encodePowerShellCommand(text), "base64");
    expect(bytes.length).toBe(text.length * 2);
    // 😀 is the surrogate pair D83D DE00, little-endian.
    expect(bytes.subarray(-6, -2)).toEqual(Buffer.from([0x3d, 0xd8, 0x00, 0xde]));
    expect(decodePowerShellCommand(encodePowerShellCommand(text))).toBe(text);
  });

  it("refuses a script whose command line would pass Windows' 32,767 characters", () => {
    const overhead = ["powershell.exe", ...powershellExec("").arg].join(" ").length;
    // Each script character is 2 bytes of UTF-16, 8/3 characters of base64.
    const fits = Math.floor(((MAX_COMMAND_LINE_CHARS - overhead) * 3) / 8);
    expect(() => powershellExec("x".repeat(fits - 2))).not.toThrow();
    expect(() => powershellExec("x".repeat(fits + 2))).toThrow(
      expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
    );
  });

  it("scriptOf refuses arguments powershellExec did not make", () => {
    const foreign = { ...powershellExec("x"), arg: ["-EncodedCommand", "ZABpAHIA"] };
    expect(() => scriptOf(foreign)).toThrow(/not a powershellExec\(\) payload/);
  });
});

describe("psQuote", () => {
  it("makes single-quoted literals: nothing expands, quotes are doubled", () => {
    expect(psQuote("C:\\Program Files\\x.exe")).toBe("'C:\\Program Files\\x.exe'");
    expect(psQuote("it's")).toBe("'it''s'");
    expect(psQuote('$env:PATH `n $(Get-Date) "x"')).toBe("'$env:PATH `n $(Get-Date) \"x\"'");
    expect(psQuote("")).toBe("''");
    expect(psQuote("two\nlines")).toBe("'two\nlines'");
  });

  it("doubles the typographic single quotes too, which PowerShell also ends a string with", () => {
    expect(psQuote("a\u2018b\u2019c\u201Ad\u201Be")).toBe(
      "'a\u2018\u2018b\u2019\u2019c\u201A\u201Ad\u201B\u201Be'",
    );
  });

  it("refuses NUL", () => {
    expect(() => psQuote("a\0b")).toThrow(
      expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
    );
  });
});
