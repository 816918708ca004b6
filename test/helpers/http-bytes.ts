// Byte bodies over HTTP for tests of the guest file routes, with node:http: an upload from a
// Buffer (with or without Content-Length), a download kept as bytes with its headers and trailers.

import { request } from "node:http";

export interface ByteAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | undefined>;
  body: Buffer;
  /** The body as JSON when it is JSON. */
  json: unknown;
}

export interface ByteRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent in chunks of 64 KiB; with `chunked`, without a Content-Length. */
  body?: Buffer;
  chunked?: boolean;
}

/** One request to the daemon on unix socket `socketPath`; the answer's body as bytes. */
export function byteRequest(socketPath: string, options: ByteRequest): Promise<ByteAnswer> {
  const { body } = options;
  const headers = {
    ...(body !== undefined && !options.chunked && { "content-length": String(body.length) }),
    ...(body !== undefined && { "content-type": "application/octet-stream" }),
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method: options.method, path: options.path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const bytes = Buffer.concat(chunks);
          let json: unknown;
          try {
            json = JSON.parse(bytes.toString());
          } catch {
            json = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            trailers: res.trailers,
            body: bytes,
            json,
          });
        });
      },
    );
    // A daemon that refuses an upload early may close the connection while it is still sent.
    req.on("error", reject);
    if (body === undefined) return void req.end();
    const step = 64 * 1024;
    const write = (offset: number): void => {
      if (offset >= body.length) return void req.end();
      const more = req.write(body.subarray(offset, offset + step));
      if (more) setImmediate(() => write(offset + step));
      else req.once("drain", () => write(offset + step));
    };
    write(0);
  });
}
