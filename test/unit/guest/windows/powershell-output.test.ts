// Reading Windows PowerShell 5.1 output: ConvertTo-Json's one-or-many quirk, its date form, the
// prelude's error line and CLIXML error streams. Hand-written outputs; not verified on a real
// Windows guest.

import { describe, expect, it } from "vitest";
import { GuestCommandError } from "../../../../src/errors.ts";
import {
  checkPowerShellResult,
  parseJsonList,
  parseJsonValue,
  parsePowerShellError,
  parsePsDate,
} from "../../../../src/guest/windows/powershell-output.ts";

describe("parseJsonList", () => {
  it("takes a list, a lone object (a pipeline of one) and no output (a pipeline of none)", () => {
    expect(parseJsonList('[{"Id":1},{"Id":2}]', "x")).toEqual([{ Id: 1 }, { Id: 2 }]);
    expect(parseJsonList('{"Id":1}\r\n', "x")).toEqual([{ Id: 1 }]);
    expect(parseJsonList("", "x")).toEqual([]);
    expect(parseJsonList("\r\n", "x")).toEqual([]);
    expect(parseJsonList('\uFEFF[{"Id":1}]', "x")).toEqual([{ Id: 1 }]);
  });

  it("unwraps the {value, Count} form 5.1 gives an array wrapped in a PSObject", () => {
    expect(parseJsonList('{"value":[{"Id":1},{"Id":2}],"Count":2}', "x")).toEqual([
      { Id: 1 },
      { Id: 2 },
    ]);
    // An object that merely has such fields stays an object.
    expect(parseJsonList('{"value":[1],"Count":5}', "x")).toEqual([{ value: [1], Count: 5 }]);
  });

  it("says what it was reading when the output is not JSON", () => {
    expect(() => parseJsonList("Get-Service : Access is denied", "Windows services")).toThrow(
      expect.objectContaining({
        code: "CORRAL_GUEST_OUTPUT_INVALID",
        message: expect.stringMatching(/^Windows services: the guest's output is not JSON/),
      }),
    );
    expect(() => parseJsonValue("", "Windows system info")).toThrow(/printed nothing/);
  });
});

describe("parsePsDate", () => {
  it("reads Windows PowerShell 5.1's /Date(ms)/ form", () => {
    // ConvertTo-Json in 5.1 writes "\/Date(1714564800000)\/"; JSON.parse leaves /Date(…)/.
    const [value] = parseJsonList('["\\/Date(1714564800000)\\/"]', "x");
    expect(parsePsDate(value, "x")).toBe("2024-05-01T12:00:00.000Z");
    expect(parsePsDate("/Date(1714564800000+0200)/", "x")).toBe("2024-05-01T12:00:00.000Z");
  });

  it("reads ISO 8601 from ToString('o'), seven fraction digits and offsets included", () => {
    expect(parsePsDate("2024-05-01T12:00:00.1234567Z", "x")).toBe("2024-05-01T12:00:00.123Z");
    expect(parsePsDate("2024-05-01T14:00:00.0000000+02:00", "x")).toBe("2024-05-01T12:00:00.000Z");
  });

  it("gives null for no date and refuses what is not one", () => {
    expect(parsePsDate(null, "x")).toBeNull();
    expect(parsePsDate("", "x")).toBeNull();
    expect(() => parsePsDate("yesterday", "event time")).toThrow(
      expect.objectContaining({ code: "CORRAL_GUEST_OUTPUT_INVALID" }),
    );
    expect(() => parsePsDate(1714564800000, "event time")).toThrow(/is not a date/);
  });
});

describe("parsePowerShellError", () => {
  it("reads the prelude's JSON line, the last one when there are several", () => {
    const stderr = [
      "WARNING: something",
      '{"corralError":{"message":"first","type":"A","category":"B","errorId":"C"}}',
      '{"corralError":{"message":"Cannot find any service with service name \'nope\'.","type":"Microsoft.PowerShell.Commands.ServiceCommandException","category":"ObjectNotFound","errorId":"NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand"}}',
      "",
    ].join("\r\n");
    expect(parsePowerShellError(stderr)).toEqual({
      message: "Cannot find any service with service name 'nope'.",
      type: "Microsoft.PowerShell.Commands.ServiceCommandException",
      category: "ObjectNotFound",
      errorId: "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
    });
  });

  it("reads the error text of a CLIXML stream (_xHHHH_ escapes, XML entities)", () => {
    const stderr =
      '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">' +
      '<S S="Error">Cannot find path &apos;C:\\nope&apos; because it does not exist._x000D__x000A_</S>' +
      '<S S="Error">    + CategoryInfo : ObjectNotFound_x000D__x000A_</S></Objs>';
    expect(parsePowerShellError(stderr)?.message).toBe(
      "Cannot find path 'C:\\nope' because it does not exist.\r\n    + CategoryInfo : ObjectNotFound",
    );
  });

  it("finds nothing in plain stderr", () => {
    expect(parsePowerShellError("some program's complaint\n")).toBeUndefined();
  });
});

describe("checkPowerShellResult", () => {
  const failed = (category: string) => ({
    exitCode: 1,
    stdout: "",
    stderr: `{"corralError":{"message":"went wrong","type":"T","category":"${category}","errorId":"Id,Cmd"}}\r\n`,
  });

  it("passes exit status 0", () => {
    expect(() => checkPowerShellResult("x", { exitCode: 0, stdout: "", stderr: "" })).not.toThrow();
  });

  it("makes ObjectNotFound CORRAL_NOT_FOUND", () => {
    expect(() => checkPowerShellResult('stop service "nope"', failed("ObjectNotFound"))).toThrow(
      expect.objectContaining({
        code: "CORRAL_NOT_FOUND",
        message: expect.stringMatching(/^stop service "nope": went wrong/),
      }),
    );
  });

  it("makes other failures a GuestCommandError with the output", () => {
    let caught: unknown;
    try {
      checkPowerShellResult('start service "Spooler"', failed("PermissionDenied"));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(GuestCommandError);
    expect(caught).toMatchObject({
      code: "CORRAL_GUEST_COMMAND_FAILED",
      exitCode: 1,
      message: expect.stringMatching(/^start service "Spooler" failed in the Windows guest: went/),
    });
    expect(() =>
      checkPowerShellResult("x", { exitCode: 3, stdout: "", stderr: "plain text" }),
    ).toThrow(/x failed in the Windows guest \(exit status 3\)/);
  });
});
