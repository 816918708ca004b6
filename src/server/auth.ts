// The bearer token that TCP clients must send: created 0600 on the daemon's first start with a
// TCP address, read back after, compared in constant time. The unix socket needs none: its mode
// (0600) already limits it to the daemon's user.

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, link, readFile, stat, unlink, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { CorralError, ErrorCodes } from "../errors.ts";
import { makeDirs } from "../host/make-dirs.ts";

const TOKEN_FILE = "api-token";
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{32,}$/;

/** Connections that arrived on the unix socket: the only ones that need no token. */
const socketConnections = new WeakSet<Socket>();

/** The token file in the daemon's state folder. */
export function tokenPath(stateDir: string): string {
  return join(stateDir, TOKEN_FILE);
}

/**
 * The daemon's bearer token, read from `<stateDir>/api-token`, or created there (mode 0600, the
 * folder 0700 if corral creates it) when there is none. Throws CORRAL_INVALID_ARGUMENT when the
 * file is readable by others or is not a token.
 */
export async function loadOrCreateToken(stateDir: string): Promise<string> {
  const path = tokenPath(stateDir);
  const existing = await readToken(path);
  if (existing !== undefined) return existing;
  for (const created of await makeDirs(stateDir, "the state folder")) await chmod(created, 0o700);
  const token = randomBytes(32).toString("base64url");
  // Written aside and linked into place: a daemon starting at the same time reads a whole token.
  const staged = `${path}.${randomBytes(6).toString("hex")}`;
  await writeFile(staged, `${token}\n`, { mode: 0o600, flag: "wx" });
  try {
    await link(staged, path);
    return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return (await readToken(path)) ?? token;
  } finally {
    await unlink(staged).catch(() => undefined);
  }
}

async function readToken(path: string): Promise<string | undefined> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (info === undefined) return undefined;
  if ((info.mode & 0o077) !== 0) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `the API token ${path} is readable by other users (mode ${(info.mode & 0o777).toString(8)}): run chmod 600 ${path}, or remove it to make a new token`,
    );
  }
  const token = (await readFile(path, "utf8")).trim();
  if (!TOKEN_PATTERN.test(token)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `the API token ${path} holds no token: remove it and corral serve makes a new one`,
    );
  }
  return token;
}

/** Marks a connection as one that arrived on the unix socket. */
export function trustSocketConnection(socket: Socket): void {
  socketConnections.add(socket);
}

/**
 * Requires `Authorization: Bearer <token>` on every request that did not arrive on the unix
 * socket; without a token every such request is refused (401 CORRAL_UNAUTHORIZED).
 */
export function requireToken(app: FastifyInstance, token: string | undefined): void {
  const expected = token === undefined ? undefined : digest(token);
  app.addHook("onRequest", async (request) => {
    if (socketConnections.has(request.raw.socket)) return;
    const given = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? "")?.[1];
    // Equal-length digests: timingSafeEqual tells nothing about the token's length or prefix.
    if (expected && given !== undefined && timingSafeEqual(digest(given), expected)) return;
    throw new CorralError(
      ErrorCodes.UNAUTHORIZED,
      given === undefined
        ? "this address needs Authorization: Bearer <token>; `corral serve token` prints the token"
        : "wrong bearer token; `corral serve token` prints the right one",
    );
  });
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
