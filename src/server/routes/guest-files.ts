// /v1/vms/{id}/guest/files?path=: PUT streams the request body into a guest file (checked against
// X-Corral-Sha256 end to end, at most limits.maxUploadBytes), GET streams a file out (its sha256
// in the X-Corral-Sha256 trailer), HEAD tells its stat in headers, DELETE removes it. Folders
// travel as tar archives (GET of a folder; PUT with archive=tar). Bodies are never buffered:
// this plugin's only body parser hands the request stream on as it is.

import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply } from "fastify";
import { Type } from "typebox";
import { CorralError, ErrorCodes } from "../../errors.ts";
import {
  readFolderArchive,
  TAR_MEDIA_TYPE,
  writeFolderArchive,
} from "../../manager/guest/folder-archives.ts";
import type { FileStat, GuestOps } from "../../manager/guest/guest-ops.ts";
import { errorResponses } from "../schemas.ts";
import { type GuestResolver, requestDeadline } from "./guest-context.ts";
import { requireGuestPath } from "./guest-paths.ts";
import {
  DeleteFileQuery,
  GuestPathQuery,
  PutFileQuery,
  PutFileReply,
  Sha256Header,
} from "./guest-schemas.ts";
import { VmParams } from "./vm-route-schemas.ts";

export interface GuestFileRouteOptions {
  guests: GuestResolver;
  /** The largest upload, in bytes (limits.maxUploadBytes). */
  maxUploadBytes: number;
}

const SHA256_HEADER = "x-corral-sha256";

/** A transfer has no time limit: it ends when it is done, or at once when the client goes away. */
const TRANSFER_TIMEOUT_MS = Number.POSITIVE_INFINITY;

const statHeaders = {
  "x-corral-type": Type.String({ description: "file, directory, symlink or other" }),
  "x-corral-size": Type.String({ description: "its size in bytes" }),
  "x-corral-mode": Type.String({ description: "its permission bits, octal (0644)" }),
  "x-corral-uid": Type.String(),
  "x-corral-gid": Type.String(),
  "last-modified": Type.String(),
  "x-corral-attributes": Type.String({
    description: "Windows: its FileAttributes (Archive, ReadOnly, Hidden…); absent on Linux",
  }),
};

export const guestFileRoutes: FastifyPluginAsyncTypebox<GuestFileRouteOptions> = async (
  app,
  { guests, maxUploadBytes },
) => {
  // This plugin's routes take any body as a stream, never parsed or buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", (_request, payload, done) => done(null, payload));

  /** The guest and the path, checked: first on their own, then for the guest's OS. */
  const guestAndPath = async (id: string, path: string): Promise<[GuestOps, string]> => {
    requireGuestPath(path);
    const guest = await guests(id);
    return [guest, requireGuestPath(path, guest.capabilities.os)];
  };

  app.put(
    "/vms/:id/guest/files",
    {
      schema: {
        summary: "write a file in the guest from the request body (streamed)",
        description: `The body is the file's bytes (any content type, e.g. application/octet-stream) — or, with archive=tar, a tar archive the guest unpacks into the folder at path. They are written to a temporary name beside the target and renamed into place only when all arrived — and, with X-Corral-Sha256, only when the sha256 of what the guest wrote is that one (else 422 CORRAL_CHECKSUM_MISMATCH and nothing at the target). At most limits.maxUploadBytes (${maxUploadBytes} here; 413 CORRAL_UPLOAD_TOO_LARGE).`,
        tags: ["guest"],
        params: VmParams,
        querystring: PutFileQuery,
        headers: Type.Object({ [SHA256_HEADER]: Type.Optional(Sha256Header) }),
        // Documents the body; an empty schema, since what arrives is a stream, not a value.
        body: {
          content: {
            "application/octet-stream": {
              schema: Type.Unknown({ description: "the file's bytes (any content type)" }),
            },
          },
        },
        response: { 200: PutFileReply, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { path: rawPath, mode, uid, gid, archive } = request.query;
      if (archive !== undefined && (mode ?? uid ?? gid) !== undefined) {
        reply.header("connection", "close");
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          "mode, uid and gid do not apply to archive=tar: the archive's entries carry their own",
        );
      }
      const expected = request.headers[SHA256_HEADER]?.toLowerCase();
      const announced = Number(request.headers["content-length"] ?? Number.NaN);
      if (announced > maxUploadBytes) {
        reply.header("connection", "close");
        throw tooLarge(`is ${announced} bytes (Content-Length)`, maxUploadBytes);
      }
      const body = request.body as IncomingMessage;
      // A refusal before the body is read: the connection closes rather than read it all.
      const [guest, path] = await guestAndPath(request.params.id, rawPath).catch((error) => {
        reply.header("connection", "close");
        throw error;
      });
      let refusal: CorralError | undefined;
      const checked = async function* () {
        const hash = createHash("sha256");
        let sizeBytes = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) {
          sizeBytes += chunk.length;
          if (sizeBytes > maxUploadBytes) {
            refusal = tooLarge(`passed ${maxUploadBytes} bytes`, maxUploadBytes);
            throw refusal;
          }
          hash.update(chunk);
          yield chunk;
        }
        const got = hash.digest("hex");
        if (expected !== undefined && got !== expected) {
          refusal = mismatch(path, expected, got);
          throw refusal;
        }
      };
      const deadline = requestDeadline(request, reply, `write ${path}`, TRANSFER_TIMEOUT_MS);
      let written: { sizeBytes: number; sha256: string };
      try {
        const sha256 = expected !== undefined ? { sha256: expected } : {};
        written = archive
          ? await writeFolderArchive(guest, path, checked(), sha256, deadline)
          : await guest.writeFile(
              path,
              checked(),
              {
                ...(mode !== undefined && { mode: Number.parseInt(mode, 8) }),
                ...(uid !== undefined && { uid }),
                ...(gid !== undefined && { gid }),
                ...sha256,
              },
              deadline,
            );
      } catch (error) {
        if (refusal) reply.header("connection", "close");
        throw refusal ?? error;
      }
      return { path, ...written };
    },
  );

  app.get(
    "/vms/:id/guest/files",
    {
      // HEAD is its own route (below): it must not read the file.
      exposeHeadRoute: false,
      schema: {
        summary: "read a file from the guest (streamed)",
        description:
          "The body is the file's bytes — for a folder, a tar archive of what it holds (application/x-tar, entries relative to the folder); its stat is in the X-Corral-* headers and the body's sha256 in the X-Corral-Sha256 trailer, sent after the last byte (a response cut short has none).",
        tags: ["guest"],
        params: VmParams,
        querystring: GuestPathQuery,
        produces: ["application/octet-stream", TAR_MEDIA_TYPE],
        response: {
          200: {
            description: "the file's bytes",
            headers: {
              ...statHeaders,
              trailer: Type.String({ description: "x-corral-sha256: the trailer that follows" }),
            },
            content: {
              "application/octet-stream": { schema: Type.String({ format: "binary" }) },
              [TAR_MEDIA_TYPE]: { schema: Type.String({ format: "binary" }) },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const [guest, path] = await guestAndPath(request.params.id, request.query.path);
      const deadline = requestDeadline(request, reply, `read ${path}`, TRANSFER_TIMEOUT_MS);
      const stat = await guest.stat(path, deadline);
      const isFolder = stat.type === "directory";
      // The first chunk is read before any header is set: a failure to start is an error answer.
      const chunks = (
        isFolder ? readFolderArchive(guest, path, deadline) : guest.readFile(path, deadline)
      )[Symbol.asyncIterator]();
      const first = await chunks.next();
      const hash = createHash("sha256");
      const hashed = async function* () {
        for (let next = first; !next.done; next = await chunks.next()) {
          hash.update(next.value);
          yield next.value;
        }
      };
      setStatHeaders(reply, stat);
      reply.header("content-type", isFolder ? TAR_MEDIA_TYPE : "application/octet-stream");
      reply.trailer(SHA256_HEADER, async () => hash.digest("hex"));
      return reply.send(Readable.from(hashed(), { objectMode: false }));
    },
  );

  app.head(
    "/vms/:id/guest/files",
    {
      // @fastify/swagger leaves HEAD routes out unless told: this one is no copy of a GET.
      config: { swagger: { exposeHeadRoute: true } },
      schema: {
        summary: "a guest file's or folder's stat, in headers",
        tags: ["guest"],
        params: VmParams,
        querystring: GuestPathQuery,
        response: {
          200: { description: "it exists", headers: statHeaders },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const [guest, path] = await guestAndPath(request.params.id, request.query.path);
      const stat = await guest.stat(path, requestDeadline(request, reply, `stat ${path}`));
      setStatHeaders(reply, stat);
      return reply.code(200).send();
    },
  );

  app.delete(
    "/vms/:id/guest/files",
    {
      schema: {
        summary: "remove a file (or, with recursive, a folder) in the guest",
        tags: ["guest"],
        params: VmParams,
        querystring: DeleteFileQuery,
        response: { 204: Type.Null({ description: "removed" }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const [guest, path] = await guestAndPath(request.params.id, request.query.path);
      await guest.remove(
        path,
        { recursive: request.query.recursive ?? false },
        requestDeadline(request, reply, `remove ${path}`),
      );
      return reply.code(204).send(null);
    },
  );
};

function setStatHeaders(reply: FastifyReply, stat: FileStat): void {
  reply.headers({
    "x-corral-type": stat.type,
    "x-corral-size": String(stat.sizeBytes),
    "x-corral-mode": stat.mode.toString(8).padStart(4, "0"),
    "x-corral-uid": String(stat.uid),
    "x-corral-gid": String(stat.gid),
    "last-modified": new Date(stat.modifiedAt).toUTCString(),
  });
  if (stat.attributes !== undefined) reply.header("x-corral-attributes", stat.attributes);
}

/** `size` says how large the upload is: "is 5000 bytes", "passed 4096 bytes". */
function tooLarge(size: string, maxUploadBytes: number): CorralError {
  return new CorralError(
    ErrorCodes.UPLOAD_TOO_LARGE,
    `the upload ${size}; the daemon takes at most ${maxUploadBytes} (limits.maxUploadBytes, --max-upload-bytes): nothing was written`,
  );
}

function mismatch(path: string, expected: string, got: string): CorralError {
  return new CorralError(
    ErrorCodes.CHECKSUM_MISMATCH,
    `${path}: the bytes that arrived have sha256 ${got}, not ${expected} (X-Corral-Sha256): nothing was written`,
  );
}
