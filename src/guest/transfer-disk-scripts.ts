// The guest's side of file copies through the transfer disk (transfer-disk.ts): bash run as one
// command each. The bytes move between the disk and the file with `dd` in 16 MiB direct
// requests, bypassing the guest's page cache for the disk (the host writes it behind the guest's
// back); a copy into the guest is written beside its target and renamed into place when whole.

import { posix } from "node:path";
import { shellQuote } from "./shell-quote.ts";
import { commitLines, LIST_TREE, type ToGuestScriptOptions } from "./transfer-scripts.ts";

/** The transfer disk's size the guest sees: a copy's bytes must fit (else: the port). */
export const TRANSFER_DISK_BYTES = 64 * 1024 ** 3;
/** The disk's serial, which the guest finds it by. */
export const TRANSFER_DISK_SERIAL = "corral-xfer";
/** Exit status of a script when the guest has no transfer disk: the port takes the copy. */
export const EXIT_NO_DISK = 76;
/** Exit status of a copy out when the file does not fit on the disk: the port takes it. */
export const EXIT_TOO_BIG = 77;

/** The prefix of the line a copy out prints first: what the source is, and its size. */
const HEADER = "corral-xfer";
const DD = "dd bs=16M status=none";
/**
 * Sets `d` to the disk's device, by its serial in sysfs: the shell may run before udev has made
 * /dev/disk/by-id (devtmpfs has the device itself from the start).
 */
const FIND_DISK = [
  `d= LC_ALL=C; for b in /sys/block/vd*; do [ "$(cat "$b/serial" 2>/dev/null)" = ${TRANSFER_DISK_SERIAL} ] && d=/dev/\${b##*/} && break; done`,
  `[ -n "$d" ] && [ -b "$d" ] || exit ${EXIT_NO_DISK}`,
];

/**
 * Reads `size` bytes from the disk into `target` (a folder's tar archive is extracted; it is
 * merged into an existing folder). Direct reads need whole sectors: the read is rounded up to
 * 512 bytes (zeros on the disk) and the file cut back. With `sha256`, the file is hashed once
 * written: the sum is of what landed in the guest.
 */
export function diskToGuestScript(options: ToGuestScriptOptions): string {
  const { nonce, isDirectory, size, mode, target, sha256 } = options;
  const staging = posix.join(posix.dirname(target), `.corral-copy-${nonce}`);
  const sectors = Math.ceil(size / 512) * 512;
  const read = `${DD} if="$d" iflag=direct,count_bytes count=${sectors}`;
  const receive = isDirectory
    ? `mkdir -p -- "$p" && { ${read} | { tar -x -f - -C "$p" --no-same-owner; e=$?; cat >/dev/null; exit "$e"; }; r=("\${PIPESTATUS[@]}"); [ "\${r[0]}" -eq 0 ] && [ "\${r[1]}" -eq 0 ]; }`
    : `{ o=; if dd if=/dev/null of="$p" oflag=direct status=none 2>/dev/null; then o=oflag=direct; fi; } && ${read} of="$p" $o && truncate -s ${size} -- "$p"${sha256 ? ' && sha256sum <"$p"' : ""}`;
  return [
    `t=${shellQuote(target)} p=${shellQuote(staging)}`,
    ...FIND_DISK,
    `trap 'rm -rf -- "$p"; exit 143' TERM`,
    `mkdir -p -- ${shellQuote(posix.dirname(target))} && ${receive}`,
    'e=$?; if [ "$e" -ne 0 ]; then rm -rf -- "$p"; exit "$e"; fi',
    ...commitLines(isDirectory, mode),
    'e=$?; if [ "$e" -ne 0 ]; then rm -rf -- "$p"; fi; exit "$e"',
  ].join("\n");
}

/**
 * Writes `source` to the disk from its start and prints a header line first: `corral-xfer
 * f<mode> <bytes>` for a file, `corral-xfer d` for a folder (a tar archive of its files, folders
 * and symlinks, whose length tar prints on stderr: see `parseTarBytes`), `corral-xfer x<type>`
 * for anything else, `corral-xfer -` when it does not exist. The last block is padded with zeros
 * to the request size. With `sha256`, a file's sum is taken beside the copy from the file again
 * (a second reader on the other vCPU): a file that changes meanwhile gives a sum that differs.
 */
export function diskToHostScript(source: string, sha256 = false): string {
  const write = `${DD} of="$d" iflag=fullblock oflag=direct conv=sync`;
  const send = `{ i=; if dd if="$s" of=/dev/null iflag=direct count=0 status=none 2>/dev/null; then i=direct,; fi; } && ${DD} if="$s" of="$d" iflag="$i"fullblock oflag=direct conv=sync`;
  return [
    `s=${shellQuote(source)}`,
    ...FIND_DISK,
    `if [ -d "$s" ]; then echo "${HEADER} d"`,
    `  (cd -- "$s" && ${LIST_TREE} | tar -c --totals -f - --null --no-recursion -T -) | ${write}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '  r=("${PIPESTATUS[@]}"); e=$((r[0] | r[1]))',
    'elif [ -f "$s" ]; then n=$(stat -L -c %s -- "$s") || exit 1',
    `  if [ "$n" -gt ${TRANSFER_DISK_BYTES} ]; then exit ${EXIT_TOO_BIG}; fi`,
    `  printf "${HEADER} f%s %s\\n" "$(stat -L -c %a -- "$s")" "$n"`,
    sha256 ? `  sha256sum <"$s" & ${send}; e=$?; wait $! || e=1` : `  ${send}; e=$?`,
    `elif [ -e "$s" ]; then printf "${HEADER} x%s\\n" "$(stat -L -c %F -- "$s")"; e=0`,
    `else echo "${HEADER} -"; e=0; fi`,
    'exit "$e"',
  ].join("\n");
}

/** What a copy out's header line says: the kind letter, its detail, and a file's size. */
export function parseDiskHeader(
  stdout: string,
): { kind: string; detail: string; bytes?: number } | undefined {
  const file = new RegExp(`^${HEADER} f([0-7]+) (\\d+)$`, "m").exec(stdout);
  if (file) return { kind: "f", detail: file[1] ?? "", bytes: Number(file[2]) };
  const other = new RegExp(`^${HEADER} ([-dx])(.*)$`, "m").exec(stdout);
  return other ? { kind: other[1] ?? "", detail: other[2] ?? "" } : undefined;
}

/** The archive's length GNU tar's `--totals` printed on stderr. */
export function parseTarBytes(stderr: string): number | undefined {
  const match = /^Total bytes written: (\d+)/m.exec(stderr);
  return match ? Number(match[1]) : undefined;
}
