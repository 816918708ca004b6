// The files of a cloud-init NoCloud seed, as text: meta-data (instance id, host name), user-data
// (a #cloud-config made from the request's users and keys, the request's own user-data, or both
// as a MIME multipart message) and network-config.

import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { CloudInit } from "./vm-schemas.ts";

/** What the VM's cloud-init reads: the seed's files by name. */
export interface CloudInitFiles {
  "meta-data": string;
  "user-data": string;
  "network-config"?: string;
}

export interface CloudInitDataOptions {
  /** cloud-init runs its per-instance modules once per instance id: the VM's id. */
  instanceId: string;
  /** The guest's host name, unless `cloudInit.hostname` names another. */
  hostname: string;
  cloudInit: CloudInit;
  /** network-config (version 1 or 2), written as it is. */
  network?: Record<string, unknown>;
}

/**
 * How our #cloud-config part merges into the request's user-data when both are given: the
 * request's values win where both set a key, lists (users, ssh_authorized_keys) are joined.
 * https://cloudinit.readthedocs.io/en/latest/reference/merging.html
 */
export const MERGE_TYPE = "dict(no_replace,recurse_list)+list(append)+str()";

/**
 * The seed's files. `userData` alone is passed through as it is; users and keys alone become a
 * #cloud-config; both become a multipart message, the request's user-data first and ours merged
 * into it (MERGE_TYPE). Throws CORRAL_INVALID_ARGUMENT for user-data that is already a MIME
 * message when users or keys are given too, or for a network-config without version 1 or 2.
 */
export function cloudInitFiles(options: CloudInitDataOptions): CloudInitFiles {
  const { cloudInit } = options;
  const hostname = cloudInit.hostname ?? options.hostname;
  const files: CloudInitFiles = {
    "meta-data": stringify({ "instance-id": options.instanceId, "local-hostname": hostname }),
    "user-data": userData(cloudInit, hostname),
  };
  if (options.network !== undefined) {
    const version = options.network.version;
    if (version !== 1 && version !== 2) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `cloud-init network-config needs "version: 1" or "version: 2", not ${JSON.stringify(version)}`,
      );
    }
    files["network-config"] = stringify(options.network);
  }
  return files;
}

function userData(cloudInit: CloudInit, hostname: string): string {
  const hasOwn = cloudInit.users !== undefined || cloudInit.sshAuthorizedKeys !== undefined;
  if (cloudInit.userData !== undefined && !hasOwn) return cloudInit.userData;
  const ours = `#cloud-config\n${stringify(cloudConfig(cloudInit, hostname))}`;
  if (cloudInit.userData === undefined) return ours;
  if (/^content-type:/i.test(cloudInit.userData.trimStart())) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      "cloudInit.userData is a MIME multipart message: put the users and keys in it, or leave cloudInit.users and cloudInit.sshAuthorizedKeys out",
    );
  }
  return multipart([
    { type: partType(cloudInit.userData), filename: "user-data", text: cloudInit.userData },
    {
      type: "text/cloud-config",
      filename: "corral.cfg",
      text: ours,
      headers: [`Merge-Type: ${MERGE_TYPE}`],
    },
  ]);
}

function cloudConfig(cloudInit: CloudInit, hostname: string): Record<string, unknown> {
  const users = (cloudInit.users ?? []).map((user) => ({
    name: user.name,
    shell: "/bin/bash",
    lock_passwd: true,
    ...(user.sshAuthorizedKeys && { ssh_authorized_keys: user.sshAuthorizedKeys }),
    ...(user.sudo && { sudo: "ALL=(ALL) NOPASSWD:ALL" }),
  }));
  const keys = cloudInit.sshAuthorizedKeys;
  return {
    hostname,
    // Only the 127.0.1.1 line, so that sudo resolves the host name; the rest of /etc/hosts stays.
    manage_etc_hosts: "localhost",
    // The image's default user (debian on Debian) takes the top-level keys.
    ...(cloudInit.users && { users: [...(keys ? ["default"] : []), ...users] }),
    ...(keys && { ssh_authorized_keys: keys }),
  };
}

/** The MIME type cloud-init gives user-data by its first line, as cloud-init itself does. */
function partType(text: string): string {
  const starts: [string, string][] = [
    ["#cloud-config-archive", "text/cloud-config-archive"],
    ["#cloud-config-jsonp", "text/cloud-config-jsonp"],
    ["#cloud-config", "text/cloud-config"],
    ["#cloud-boothook", "text/cloud-boothook"],
    ["#include-once", "text/x-include-once-url"],
    ["#include", "text/x-include-url"],
    ["#part-handler", "text/part-handler"],
    ["#upstart-job", "text/upstart-job"],
    ["## template: jinja", "text/jinja2"],
    ["#!", "text/x-shellscript"],
  ];
  const first = text.trimStart();
  return starts.find(([prefix]) => first.startsWith(prefix))?.[1] ?? "text/plain";
}

interface Part {
  type: string;
  filename: string;
  text: string;
  headers?: string[];
}

/** A multipart/mixed message; parts are base64, so no text can end one early. */
function multipart(parts: Part[]): string {
  const boundary = `==corral-${randomBytes(12).toString("hex")}==`;
  const lines = [`Content-Type: multipart/mixed; boundary="${boundary}"`, "MIME-Version: 1.0", ""];
  for (const part of parts) {
    lines.push(
      `--${boundary}`,
      `Content-Type: ${part.type}; charset="utf-8"`,
      "MIME-Version: 1.0",
      "Content-Transfer-Encoding: base64",
      `Content-Disposition: attachment; filename="${part.filename}"`,
      ...(part.headers ?? []),
      "",
      ...(Buffer.from(part.text)
        .toString("base64")
        .match(/.{1,76}/g) ?? []),
      "",
    );
  }
  lines.push(`--${boundary}--`, "");
  return lines.join("\n");
}
