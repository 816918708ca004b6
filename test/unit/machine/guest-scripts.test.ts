import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  setClockScripts,
  unitObjectPath,
  untilScript,
  waitForUnitScript,
} from "../../../src/machine/guest-scripts.ts";

describe("guest scripts", () => {
  it("escapes unit names into systemd's D-Bus object paths", () => {
    expect(unitObjectPath("foo-bar.service")).toBe(
      "/org/freedesktop/systemd1/unit/foo_2dbar_2eservice",
    );
    expect(unitObjectPath("1x@y.socket")).toBe("/org/freedesktop/systemd1/unit/_31x_40y_2esocket");
  });

  it("are valid bash", () => {
    for (const script of [
      waitForUnitScript("a.service", 1000),
      waitForUnitScript("a", 1000, "alice"),
      untilScript("true", true, 1000),
      setClockScripts(Date.now()).request,
      setClockScripts(Date.now()).script,
    ]) {
      expect(spawnSync("bash", ["-n"], { input: script }).status).toBe(0);
    }
  });

  it("setClockScripts hands the setter a struct timespec and checks the clock to the microsecond", () => {
    const { request, script } = setClockScripts(1_700_000_000_123.4);
    // Only the printf: the whole line would set this host's clock if it had a setter.
    const printf = request.match(/printf '[^']*'/)?.[0] ?? "";
    const bytes = spawnSync("bash", ["-c", printf]).stdout;
    expect(bytes.readBigInt64LE(0)).toBe(1_700_000_000n);
    expect(bytes.readBigInt64LE(8)).toBe(123_400_000n);
    expect(bytes.length).toBe(16);
    expect(script).toContain('[ "$__r" != "ok 1700000000" ]');
    expect(script).toContain("__t = 1700000000123400 + ");
    expect(script).toContain("__t > 1000000");
  });

  // With no setter (no FIFO here), the script falls back on `date -s`: a function stands in for
  // date(1) (its arguments on stderr: the script drops date's output) so that this host's clock
  // stays as it is.
  const runClockScript = (epochMs: number) =>
    spawnSync(
      "bash",
      ["-c", `date() { printf '%s\\n' "$*" >&2; }\n${setClockScripts(epochMs).script}`],
      {
        encoding: "utf8",
      },
    );

  it("setClockScripts sets a clock that is off to the time sent plus the time since it began", () => {
    const result = runClockScript(1_700_000_000_123.4);
    expect(result.status).toBe(0);
    const [, seconds] = result.stderr.match(/^-s @(\d+\.\d{6})\n$/) ?? [];
    expect(Number(seconds) - 1_700_000_000.1234).toBeGreaterThanOrEqual(0);
    expect(Number(seconds) - 1_700_000_000.1234).toBeLessThan(1);
  });

  it("setClockScripts leaves a clock that is right alone", () => {
    const result = runClockScript(Date.now());
    expect(result).toMatchObject({ status: 0, stdout: "", stderr: "" });
  });

  it("run in the shell that sends them and leave it running, with its fds 6 and 7 closed", () => {
    const shell = [
      "exec 6</dev/null 7</dev/null",
      untilScript("false", true, 100),
      'echo "status $? still here"',
      "[ -e /proc/$$/fd/6 ] || [ -e /proc/$$/fd/7 ] || echo closed",
    ].join("\n");
    const result = spawnSync("bash", ["-c", shell], { encoding: "utf8" });
    expect(result.stdout).toBe("status 124 still here\nclosed\n");
  });

  it.each([5000, 3e12, 1e20, Number.POSITIVE_INFINITY])(
    "untilScript returns the output of the attempt that met the condition (timeout %s ms)",
    (timeoutMs) => {
      const script = untilScript(
        "n=$(cat /tmp/corral-until-test 2>/dev/null || echo 0); echo $((n + 1)) > /tmp/corral-until-test; echo try$n; [ $n -ge 2 ]",
        true,
        timeoutMs,
      );
      spawnSync("rm", ["-f", "/tmp/corral-until-test"]);
      const result = spawnSync("bash", ["-c", script], { encoding: "utf8" });
      spawnSync("rm", ["-f", "/tmp/corral-until-test"]);
      expect(result.status).toBe(0);
      expect(result.stdout).toBe("try2\n");
    },
  );
});
