// A user's command in a Windows guest: the exact script (working folder, variables, the call,
// the exit status passed through) and its guest-exec payload without the error trap. Not
// verified on a real Windows guest.

import { describe, expect, it } from "vitest";
import {
  decodePowerShellCommand,
  POWERSHELL_ERROR_TRAP,
  POWERSHELL_PRELUDE,
} from "../../../../src/guest/windows/powershell.ts";
import {
  runCommandExec,
  runCommandScript,
  type WindowsCommand,
} from "../../../../src/guest/windows/run-command.ts";

const RUN_TAIL = [
  "  $succeeded = $?",
  "} catch [System.Management.Automation.CommandNotFoundException] {",
  "  [Console]::Error.WriteLine($_.Exception.Message)",
  "  exit 127",
  "}",
  "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }",
  "if (-not $succeeded) { exit 1 }",
  "exit 0",
];

describe("runCommandScript", () => {
  it("calls a program with literal arguments and passes its exit status through", () => {
    expect(runCommandScript({ argv: ["ping.exe", "-n", "1", "it's $HOME"] })).toBe(
      [
        "$ErrorActionPreference = 'Continue'",
        "$global:LASTEXITCODE = 0",
        "try {",
        "  & 'ping.exe' '-n' '1' 'it''s $HOME'",
        ...RUN_TAIL,
      ].join("\n"),
    );
  });

  it("changes folder and sets variables first, a bad folder failing with the JSON error", () => {
    expect(
      runCommandScript({
        argv: ["C:\\Program Files\\Tool\\tool.exe"],
        cwd: "C:\\Users\\corral\\work",
        env: { GREETING: "hello world", _X1: "'" },
      }),
    ).toBe(
      [
        "try { Set-Location -LiteralPath 'C:\\Users\\corral\\work' } catch { Write-CorralError $_; exit 1 }",
        "$env:GREETING = 'hello world'",
        "$env:_X1 = ''''",
        "$ErrorActionPreference = 'Continue'",
        "$global:LASTEXITCODE = 0",
        "try {",
        "  & 'C:\\Program Files\\Tool\\tool.exe'",
        ...RUN_TAIL,
      ].join("\n"),
    );
  });

  it("runs PowerShell text as a script block made from a literal", () => {
    expect(runCommandScript({ script: "Get-ChildItem 'C:\\'; exit 3" })).toBe(
      [
        "$ErrorActionPreference = 'Continue'",
        "$global:LASTEXITCODE = 0",
        "try {",
        "  & ([ScriptBlock]::Create('Get-ChildItem ''C:\\''; exit 3'))",
        ...RUN_TAIL,
      ].join("\n"),
    );
  });

  it("refuses a bad command", () => {
    const commands: WindowsCommand[] = [
      {},
      { argv: [] },
      { argv: [""] },
      { argv: ["a"], script: "b" },
      { argv: ["a"], cwd: "work" },
      { argv: ["a"], cwd: "C:\\a\\..\\b" },
      { argv: ["a"], env: { "A-B": "x" } },
      { argv: ["a"], env: { "1A": "x" } },
      { argv: ["a\0"] },
    ];
    for (const command of commands) {
      expect(() => runCommandScript(command), JSON.stringify(command)).toThrow(
        expect.objectContaining({ code: "CORRAL_INVALID_ARGUMENT" }),
      );
    }
  });
});

describe("runCommandExec", () => {
  it("runs the script after the prelude, without the error trap", () => {
    const args = runCommandExec({ argv: ["whoami.exe"] });
    expect(args.path).toBe("powershell.exe");
    expect(decodePowerShellCommand(args.arg[5] as string)).toBe(
      `${POWERSHELL_PRELUDE}\n${runCommandScript({ argv: ["whoami.exe"] })}`,
    );
    expect(decodePowerShellCommand(args.arg[5] as string)).not.toContain(POWERSHELL_ERROR_TRAP);
  });
});
