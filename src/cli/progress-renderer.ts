// Shows progress events: one live line with the elapsed time on a terminal, plain lines elsewhere.

import type { ProgressEvent, ProgressListener } from "../images/progress.ts";

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export interface ProgressRenderer {
  listener: ProgressListener;
  /** Stops the live line's timer. */
  close(): void;
}

export function progressRenderer(stream: NodeJS.WriteStream = process.stderr): ProgressRenderer {
  return stream.isTTY ? liveRenderer(stream) : plainRenderer(stream);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function plainRenderer(stream: NodeJS.WriteStream): ProgressRenderer {
  const listener = (event: ProgressEvent) => {
    const text =
      event.kind === "start"
        ? `${event.message}`
        : event.kind === "done"
          ? `done in ${seconds(event.elapsedMs)}`
          : `${event.message} (${seconds(event.elapsedMs)})`;
    stream.write(`corral: [${event.stage}] ${text}\n`);
  };
  return { listener, close: () => {} };
}

function liveRenderer(stream: NodeJS.WriteStream): ProgressRenderer {
  let current: { stage: string; message: string; started: number } | undefined;
  let frame = 0;
  const draw = () => {
    if (!current) return;
    const elapsed = seconds(performance.now() - current.started);
    const line = `${SPINNER[frame++ % SPINNER.length]} ${current.stage} ${elapsed}  ${current.message}`;
    stream.write(`\r\x1b[2K${line.slice(0, (stream.columns || 100) - 1)}`);
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  const listener = (event: ProgressEvent) => {
    if (event.kind === "start") {
      current = {
        stage: event.stage,
        message: event.message,
        started: performance.now() - event.elapsedMs,
      };
    } else if (event.kind === "info" && current) {
      current.message = event.message;
    } else if (event.kind === "done") {
      stream.write(`\r\x1b[2K✓ ${event.stage} ${seconds(event.elapsedMs)}  ${event.message}\n`);
      current = undefined;
    }
    draw();
  };
  return {
    listener,
    close: () => {
      clearInterval(timer);
      if (current) stream.write("\n");
    },
  };
}
