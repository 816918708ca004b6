// Progress events of long operations (image builds); the CLI decides how to show them.

export interface ProgressEvent {
  /** Short stage name, e.g. "rootfs". */
  stage: string;
  /** `start` and `done` bracket a stage; `info` is a line of detail within it. */
  kind: "start" | "done" | "info";
  message: string;
  /** Milliseconds since the stage started (0 for `start`). */
  elapsedMs: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Runs `fn` as stage `stage`, reporting its start and its end with the time it took. */
export async function stage<T>(
  onProgress: ProgressListener | undefined,
  name: string,
  message: string,
  fn: (info: (line: string) => void) => Promise<T>,
): Promise<T> {
  const started = performance.now();
  const elapsedMs = () => performance.now() - started;
  onProgress?.({ stage: name, kind: "start", message, elapsedMs: 0 });
  const result = await fn((line) =>
    onProgress?.({ stage: name, kind: "info", message: line, elapsedMs: elapsedMs() }),
  );
  onProgress?.({ stage: name, kind: "done", message, elapsedMs: elapsedMs() });
  return result;
}
