import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { Lifecycle, TRANSITIONS } from "../../../src/machine/lifecycle.ts";

describe("Lifecycle", () => {
  it("walks a machine through start, pause, resume and stop", () => {
    const lifecycle = new Lifecycle();
    const seen: string[] = [];
    lifecycle.onChange((state) => seen.push(state));
    for (const operation of ["start", "started", "pause", "resume", "stop", "stopped"] as const) {
      lifecycle.apply(operation, operation);
    }
    expect(seen).toEqual(["starting", "running", "paused", "running", "stopping", "stopped"]);
  });

  it("starts again after a stop or an unexpected exit, as a power cycle does", () => {
    const lifecycle = new Lifecycle("exited");
    lifecycle.apply("start", "start()");
    expect(lifecycle.state).toBe("starting");
  });

  it("refuses an operation the state does not allow, naming the state and what allows it", () => {
    const lifecycle = new Lifecycle("stopped");
    expect(() => lifecycle.apply("pause", "pause()", "web")).toThrowError(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        machine: "web",
        message: "web: pause(): not allowed while the machine is stopped (allowed when running)",
      }),
    );
    expect(lifecycle.state).toBe("stopped");
  });

  it("lets guest operations run while the guest boots, but not once it is paused", () => {
    const lifecycle = new Lifecycle("starting");
    expect(lifecycle.allows("guest")).toBe(true);
    lifecycle.apply("started", "started");
    lifecycle.apply("pause", "pause()");
    expect(lifecycle.allows("guest")).toBe(false);
  });

  it("resizes a machine that runs or boots, not a paused or ended one", () => {
    const allowed = (["created", "starting", "running", "paused", "stopped"] as const).filter(
      (state) => new Lifecycle(state).allows("resize"),
    );
    expect(allowed).toEqual(["starting", "running"]);
  });

  it("leads every state-changing operation to a state some operation leaves", () => {
    const leavable = new Set(Object.values(TRANSITIONS).flatMap((transition) => transition.from));
    for (const transition of Object.values(TRANSITIONS)) {
      if (transition.to) expect(leavable).toContain(transition.to);
    }
  });
});
