// What the QGA client sends for guest-exec, and what it refuses to send.

import { describe, expect, it } from "vitest";
import { Deadline } from "../../../src/deadline.ts";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { execArguments, MAX_EXEC_INPUT_BYTES } from "../../../src/guest/qga-exec.ts";
import { posixExecRequest } from "../../../src/guest/qga-posix.ts";
import { camelize } from "../../../src/guest/qga-types.ts";

const deadline = (timeout = 10_000) => new Deadline("exec", { timeout }, timeout);

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CorralError);
    expect((error as CorralError).code).toBe(ErrorCodes.INVALID_ARGUMENT);
    return (error as Error).message;
  }
  throw new Error("expected CORRAL_INVALID_ARGUMENT");
}

describe("execArguments", () => {
  it("spells the request as the agent wants it", () => {
    expect(
      execArguments(
        { path: "cat", args: ["-n"], env: { A: "1" }, input: "hi", captureOutput: false },
        deadline(),
      ),
    ).toEqual({
      path: "cat",
      arg: ["-n"],
      env: ["A=1"],
      "input-data": Buffer.from("hi").toString("base64"),
      "capture-output": false,
    });
    expect(execArguments({ path: "true" }, deadline())).toEqual({
      path: "true",
      "capture-output": true,
    });
  });

  it("wraps the program in timeout(1) for the deadline's remaining time", () => {
    const args = execArguments({ path: "sleep", args: ["9"] }, deadline(4000), {
      killAtDeadline: true,
    });
    expect(args.path).toBe("timeout");
    const [k, grace, seconds, ...rest] = args.arg as string[];
    expect([k, grace, rest]).toEqual(["-k", "2", ["sleep", "9"]]);
    expect(Number(seconds)).toBeGreaterThan(3.9);
    expect(Number(seconds)).toBeLessThanOrEqual(4);
    const unlimited = new Deadline("exec", { timeout: Number.POSITIVE_INFINITY }, 0);
    expect(execArguments({ path: "sleep" }, unlimited, { killAtDeadline: true }).path).toBe(
      "sleep",
    );
  });

  it("refuses what cannot travel: an empty path, NUL, a bad variable name, stdin too large", () => {
    expect(invalid(() => execArguments({ path: "" }, deadline()))).toContain("path is empty");
    expect(invalid(() => execArguments({ path: "echo", args: ["a\0b"] }, deadline()))).toContain(
      "NUL",
    );
    expect(
      invalid(() => execArguments({ path: "env", env: { "A=B": "c" } }, deadline())),
    ).toContain("not a variable name");
    const input = Buffer.alloc(MAX_EXEC_INPUT_BYTES + 1);
    expect(invalid(() => execArguments({ path: "cat", input }, deadline()))).toContain("stdin");
  });
});

describe("posixExecRequest", () => {
  it("runs argv through /bin/sh with the directory and variables as arguments", () => {
    const request = posixExecRequest({ argv: ["ls", "-l"], cwd: "/srv", env: { X: "a b" } });
    expect(request.path).toBe("/bin/sh");
    expect(request.args?.slice(2)).toEqual(["corral-exec", "/srv", "1", "X=a b", "ls", "-l"]);
  });

  it("refuses an empty argv or cwd and names that are not shell variables", () => {
    expect(invalid(() => posixExecRequest({ argv: [] }))).toContain("argv is empty");
    expect(invalid(() => posixExecRequest({ argv: ["true"], cwd: "" }))).toContain("cwd is empty");
    expect(invalid(() => posixExecRequest({ argv: ["true"], env: { "1X": "" } }))).toContain(
      "not a shell variable name",
    );
  });
});

it("camelizes the agent's kebab-case and snake_case keys, deeply", () => {
  expect(
    camelize({
      supported_commands: [{ "success-response": true }],
      "ip-addresses": [{ "ip-address": "::1" }],
    }),
  ).toEqual({
    supportedCommands: [{ successResponse: true }],
    ipAddresses: [{ ipAddress: "::1" }],
  });
});
