// The guest's side of file copies through the `corral.xfer` port (transfer-port.ts): bash run
// as one command each, under an in-guest limit. Whatever fails, a script reads exactly what the
// host sends it, so the port stays in step; a copy into the guest is written beside its target
// and renamed into place only when complete.

import { posix } from "node:path";
import { shellQuote } from "./shell-quote.ts";

/** Exit status of a copy into the guest that the host gave up (it says why itself). */
export const EXIT_HOST_GAVE_UP = 75;

/** Markers of one transfer; the nonce is 32 hex digits, new for each transfer. */
export function transferMarkers(nonce: string) {
  return {
    /** guest → host: the guest reads the port now. */
    ready: `__corral_xfer_ready_${nonce}_`,
    /** host → guest: the data follows. A newline, then hex digits: see `syncLoop`. */
    sync: `\n${nonce}`,
    /** guest → host: around the data of a copy out of the guest. */
    start: `__corral_xfer_start_${nonce}_`,
    end: `__corral_xfer_end_${nonce}_`,
  };
}

/** Lists a tree's regular files, folders and symlinks, NUL-separated, for `tar -T`. */
export const LIST_TREE = "find . -mindepth 1 \\( -type f -o -type d -o -type l \\) -print0";

export interface ToGuestScriptOptions {
  nonce: string;
  isDirectory: boolean;
  /** Bytes the host sends (or has put on the transfer disk): the file, or a folder's tar archive. */
  size: number;
  /** Permission bits of a file. */
  mode: number;
  target: string;
  /**
   * Also print the sha256 of a file's bytes (see `parseSha256`): over the port as they arrive,
   * from the transfer disk as written.
   */
  sha256?: boolean;
}

/**
 * Receives a file (or a folder as a tar archive) into `target`. It opens the port, says it is
 * ready, skips any stale bytes up to the sync sequence, reads exactly `size` bytes and then one
 * byte, `Y` if the host sent the data whole or `N` if it gave up (it pads with zeros then).
 * A folder is merged into an existing one.
 *
 * The port gives at most one 4 KiB buffer per read (the guest's virtio_console driver): `dd`
 * gathers them into 1 MiB blocks before the pipe, whose reader then wakes once a 64 KiB pipe
 * buffer rather than once a 4 KiB read (a wake-up between two vCPUs costs much under TCG).
 */
export function toGuestScript(options: ToGuestScriptOptions): string {
  const { nonce, isDirectory, size, mode, target, sha256 } = options;
  const markers = transferMarkers(nonce);
  const staging = posix.join(posix.dirname(target), `.corral-copy-${nonce}`);
  const receive = isDirectory
    ? 'mkdir -p -- "$p" && tar -x -f - -C "$p" --no-same-owner'
    : sha256
      ? `tee -- "$p" | sha256sum; e=\${PIPESTATUS[0]}; [ "$e" -eq 0 ]`
      : 'cat > "$p"';
  return [
    `t=${shellQuote(target)} p=${shellQuote(staging)} LC_ALL=C`,
    `trap 'rm -rf -- "$p"; exit 143' TERM`,
    'exec 3<>"$__corral_xfer" || exit 70',
    `printf %s ${markers.ready} >&3`,
    ...syncLoop(markers.sync),
    `dd bs=1M count=${size} iflag=fullblock,count_bytes status=none <&3 | { mkdir -p -- ${shellQuote(posix.dirname(target))} && ${receive}; e=$?; cat >/dev/null; exit "$e"; }`,
    "e=$?",
    "IFS= read -r -N 1 -u 3 ok || ok=",
    "exec 3<&-",
    `if [ "$ok" != Y ]; then rm -rf -- "$p"; exit ${EXIT_HOST_GAVE_UP}; fi`,
    'if [ "$e" -ne 0 ]; then rm -rf -- "$p"; exit "$e"; fi',
    ...commitLines(isDirectory, mode),
    'e=$?; if [ "$e" -ne 0 ]; then rm -rf -- "$p"; fi; exit "$e"',
  ].join("\n");
}

/**
 * Puts the received staging file or folder `$p` in place at `$t` (a folder merged into an
 * existing one, a file given the permission bits `mode`); fails, with `$p` left, otherwise.
 */
export function commitLines(isDirectory: boolean, mode: number): string[] {
  return isDirectory
    ? [
        'if [ -d "$t" ]; then cp -a -- "$p/." "$t/" && rm -rf -- "$p";',
        'elif [ -e "$t" ] || [ -L "$t" ]; then echo "corral: $t exists and is not a directory" >&2; false;',
        'else mv -- "$p" "$t"; fi',
      ]
    : [
        'if [ -d "$t" ]; then echo "corral: $t is a directory" >&2; false;',
        `else chmod ${(mode & 0o777).toString(8)} -- "$p" && mv -f -- "$p" "$t"; fi`,
      ];
}

/**
 * Reads fd 3 up to and including `sync`, a newline then characters that are not newlines:
 * after a mismatch, the match can only start again at a newline.
 */
function syncLoop(sync: string): string[] {
  return [
    `s=$'\\n'${sync.slice(1)} i=0`,
    `while [ "$i" -lt \${#s} ]; do`,
    '  if [ "$i" -eq 0 ]; then IFS= read -r -u 3 _ || exit 71; i=1; continue; fi',
    "  IFS= read -r -N 1 -u 3 c || exit 71",
    `  if [ "$c" = "\${s:i:1}" ]; then i=$((i + 1)); elif [ "$c" = $'\\n' ]; then i=1; else i=0; fi`,
    "done",
  ];
}

/**
 * Sends `source` out: the start marker, a header line (`f<mode>` and the file, `d` and a tar
 * archive of the folder's files, folders and symlinks, `x<type>` for anything else, `-` when
 * it does not exist), then the end marker, whatever happened in between. With `sha256`, the
 * script also prints the file's sha256.
 */
export function toHostScript(nonce: string, source: string, sha256 = false): string {
  const markers = transferMarkers(nonce);
  // The sum is taken beside the copy, from the file again (a second reader on the other vCPU):
  // a tee would cut the port's writes to its 8 KiB, each a round trip to QEMU. A file that
  // changes meanwhile gives a sum that differs from the host's.
  const send = sha256
    ? 'sha256sum <"$s" & cat -- "$s" >&3; e=$?; wait $! || e=1'
    : 'cat -- "$s" >&3; e=$?';
  return [
    `s=${shellQuote(source)}`,
    'exec 3<>"$__corral_xfer" || exit 70',
    `printf %s ${markers.start} >&3`,
    'if [ -d "$s" ]; then printf "d\\n" >&3',
    `  (cd -- "$s" && ${LIST_TREE} | tar -c -f - --null --no-recursion -T -) >&3; e=$?`,
    `elif [ -f "$s" ]; then printf "f%s\\n" "$(stat -L -c %a -- "$s")" >&3; ${send}`,
    'elif [ -e "$s" ]; then printf "x%s\\n" "$(stat -L -c %F -- "$s")" >&3; e=0',
    'else printf -- "-\\n" >&3; e=0; fi',
    `printf %s ${markers.end} >&3`,
    'exit "$e"',
  ].join("\n");
}

/** The sha256 a script run with `sha256` printed (sha256sum's line), if any. */
export function parseSha256(stdout: string): string | undefined {
  return /^([0-9a-f]{64}) {2}-$/m.exec(stdout)?.[1];
}
