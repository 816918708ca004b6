// Ctrl-C and SIGTERM: the first aborts the running command so it can clean up; a second one
// exits at once (the watchdog still ends every VM and helper).

export const EXIT_INTERRUPTED = 130;

/** An AbortSignal that fires on SIGINT or SIGTERM. */
export function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (name: NodeJS.Signals) => {
    count += 1;
    if (count > 1) process.exit(EXIT_INTERRUPTED);
    process.stderr.write(`\ncorral: ${name}: stopping and cleaning up (again to quit now)\n`);
    controller.abort(new Error(`interrupted by ${name}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return controller.signal;
}
