// cloud-init NoCloud seeds: the ISO's label and files, read back with xorriso and blkid, and how
// the request's user-data and its users and keys become user-data.

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ErrorCodes } from "../../../src/errors.ts";
import { cloudInitFiles, MERGE_TYPE } from "../../../src/manager/cloud-init-data.ts";
import { writeCloudInitSeed } from "../../../src/manager/cloud-init-seed.ts";
import { temporaryDir } from "../../helpers/cli.ts";

const KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0corralTestKeyNotReal0000000000000000000 op@host";

/** The files of the ISO at `iso`, extracted with xorriso. */
function readIso(iso: string): Record<string, string> {
  const out = temporaryDir("corral-seed-out-");
  const result = spawnSync("xorriso", ["-osirrox", "on", "-indev", iso, "-extract", "/", out], {
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
  return Object.fromEntries(
    readdirSync(out).map((name) => [name, readFileSync(join(out, name), "utf8")]),
  );
}

/** The parts of a multipart/mixed user-data: their headers and decoded bodies. */
function mimeParts(text: string): { headers: Record<string, string>; body: string }[] {
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1];
  expect(boundary).toBeDefined();
  return text
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const [head = "", body = ""] = part.replace(/^\n/, "").split("\n\n");
      const headers = Object.fromEntries(
        head.split("\n").map((line) => {
          const at = line.indexOf(": ");
          return [line.slice(0, at).toLowerCase(), line.slice(at + 2)];
        }),
      );
      expect(headers["content-transfer-encoding"]).toBe("base64");
      return { headers, body: Buffer.from(body.replace(/\n/g, ""), "base64").toString() };
    });
}

describe("writeCloudInitSeed", () => {
  it("writes an ISO labelled cidata with meta-data, user-data and network-config", async () => {
    const dir = temporaryDir("corral-seed-");
    const network = {
      version: 2,
      ethernets: { eth0: { match: { macaddress: "52:54:00:12:34:56" }, dhcp4: true } },
    };
    const path = await writeCloudInitSeed(dir, {
      instanceId: "01JCLOUDINSTANCE0000000000",
      hostname: "web-1",
      cloudInit: { users: [{ name: "alice", sshAuthorizedKeys: [KEY], sudo: true }] },
      network,
    });
    expect(path).toBe(join(dir, "seed.iso"));
    expect(readdirSync(dir)).toEqual(["seed.iso"]);

    const blkid = spawnSync("blkid", ["-o", "export", path], { encoding: "utf8" });
    expect(blkid.stdout).toContain("LABEL=cidata");
    expect(blkid.stdout).toContain("TYPE=iso9660");

    const files = readIso(path);
    expect(Object.keys(files).sort()).toEqual(["meta-data", "network-config", "user-data"]);
    expect(parse(files["meta-data"] as string)).toEqual({
      "instance-id": "01JCLOUDINSTANCE0000000000",
      "local-hostname": "web-1",
    });
    const userData = files["user-data"] as string;
    expect(userData.startsWith("#cloud-config\n")).toBe(true);
    expect(parse(userData)).toEqual({
      hostname: "web-1",
      manage_etc_hosts: "localhost",
      users: [
        {
          name: "alice",
          shell: "/bin/bash",
          lock_passwd: true,
          ssh_authorized_keys: [KEY],
          sudo: "ALL=(ALL) NOPASSWD:ALL",
        },
      ],
    });
    expect(parse(files["network-config"] as string)).toEqual(network);
  });

  it("replaces an existing seed whole", async () => {
    const dir = temporaryDir("corral-seed-");
    const options = { instanceId: "i-1", hostname: "one", cloudInit: {} };
    await writeCloudInitSeed(dir, options);
    const path = await writeCloudInitSeed(dir, { ...options, instanceId: "i-2", hostname: "two" });
    expect(parse(readIso(path)["meta-data"] as string)).toEqual({
      "instance-id": "i-2",
      "local-hostname": "two",
    });
    expect(readdirSync(dir)).toEqual(["seed.iso"]);
  });

  it("writes nothing for bad data", async () => {
    const dir = temporaryDir("corral-seed-");
    await expect(
      writeCloudInitSeed(dir, {
        instanceId: "i-1",
        hostname: "web",
        cloudInit: {},
        network: { ethernets: {} },
      }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining('"version: 1" or "version: 2"'),
    });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("cloud-init user-data", () => {
  const base = { instanceId: "i-1", hostname: "web" };

  it("passes the request's user-data through as it is when it has no users or keys", () => {
    const userData = "#!/bin/sh\necho hello > /var/tmp/hello\n";
    const files = cloudInitFiles({ ...base, cloudInit: { userData, hostname: "db" } });
    expect(files["user-data"]).toBe(userData);
    expect(parse(files["meta-data"])).toEqual({ "instance-id": "i-1", "local-hostname": "db" });
    expect(files["network-config"]).toBeUndefined();
  });

  it("gives the top-level keys to the image's default user, kept beside the request's users", () => {
    const withUsers = cloudInitFiles({
      ...base,
      cloudInit: { sshAuthorizedKeys: [KEY], users: [{ name: "bob" }] },
    });
    expect(parse(withUsers["user-data"])).toEqual({
      hostname: "web",
      manage_etc_hosts: "localhost",
      users: ["default", { name: "bob", shell: "/bin/bash", lock_passwd: true }],
      ssh_authorized_keys: [KEY],
    });
    // Without users, cloud-init makes the default user by itself.
    const keysOnly = parse(
      cloudInitFiles({ ...base, cloudInit: { sshAuthorizedKeys: [KEY] } })["user-data"],
    );
    expect(keysOnly).toEqual({
      hostname: "web",
      manage_etc_hosts: "localhost",
      ssh_authorized_keys: [KEY],
    });
  });

  it("joins user-data and users as a multipart message, the request's part first", () => {
    const userData = "#cloud-config\nruncmd:\n  - touch /var/tmp/ran\n";
    const files = cloudInitFiles({
      ...base,
      cloudInit: { userData, users: [{ name: "carol", sshAuthorizedKeys: [KEY] }] },
    });
    const text = files["user-data"];
    expect(text).toMatch(/^Content-Type: multipart\/mixed; boundary="/);
    const [theirs, ours] = mimeParts(text);
    expect(theirs?.headers["content-type"]).toBe('text/cloud-config; charset="utf-8"');
    expect(theirs?.body).toBe(userData);
    expect(ours?.headers["content-type"]).toBe('text/cloud-config; charset="utf-8"');
    expect(ours?.headers["merge-type"]).toBe(MERGE_TYPE);
    expect(parse(ours?.body as string)).toMatchObject({
      hostname: "web",
      users: [{ name: "carol", ssh_authorized_keys: [KEY] }],
    });
  });

  it("types the request's part by its first line, as cloud-init does", () => {
    const script = "#!/bin/bash\necho ünïcödé > /var/tmp/x\n";
    const files = cloudInitFiles({
      ...base,
      cloudInit: { userData: script, sshAuthorizedKeys: [KEY] },
    });
    const [theirs] = mimeParts(files["user-data"]);
    expect(theirs?.headers["content-type"]).toBe('text/x-shellscript; charset="utf-8"');
    expect(theirs?.body).toBe(script);
  });

  it("refuses user-data that is already MIME when users are given too", () => {
    expect(() =>
      cloudInitFiles({
        ...base,
        cloudInit: {
          userData: 'Content-Type: multipart/mixed; boundary="x"\n\n--x--\n',
          users: [{ name: "dave" }],
        },
      }),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining("MIME multipart"),
      }),
    );
  });
});
