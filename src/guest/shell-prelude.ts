// The bash that corral sends to a backdoor shell once it has printed its banner: it opens the
// output ports, starts a watcher that reports the shell's death, and defines the functions every
// command line calls (see shell-framing.ts for the host side of the protocol).

import { STDERR_PORT, STDOUT_PORT, XFER_PORT } from "./shell-framing.ts";

/**
 * Where the image's vsock relay (recipes/debian-12, `vsock-ports`) says how to open each guest
 * port: a file named by the port (`corral.stdout`) holding its bash path.
 */
export const VSOCK_PORTS_DIR = "/run/corral/ports";

/** How long a command killed at its limit gets between SIGTERM and SIGKILL. */
export const KILL_GRACE_SECONDS = 2;
/** How long the killed starter of a command whose limit came first may take to say whether it started it. */
const LATE_START_SECONDS = 20;

/**
 * The prelude for the shell session `token` (32 hex digits). It may be sent again to a shell
 * that already ran one (a restored snapshot): ports already open are kept, and the previous
 * watcher is replaced (it then reports its own token, which nobody listens for any more).
 *
 * - Ports: fds 8 and 9 are the stdout and stderr ports, found by name in sysfs (no udev needed);
 *   `__corral_xfer` names the transfer port. A port held by another process cannot be opened
 *   (virtio ports have one opener): the ready line says so. In a VM without virtio-serial
 *   (Firecracker, Cloud Hypervisor) the image's vsock relay serves each port on a loopback TCP
 *   port and writes its bash path (`/dev/tcp/127.0.0.1/<port>`) into `/run/corral/ports/<name>`
 *   (`VSOCK_PORTS_DIR`; `CORRAL_PORTS_DIR` in the shell's environment overrides it); QEMU
 *   guests have no such folder.
 * - Watcher: a process (not named `bash --norc`, so `pkill -f 'bash --norc'` spares it) that
 *   reads a pipe only the shell holds open; when the shell dies, even by SIGKILL, the pipe
 *   reaches its end and the watcher prints `__corral_died_<token>` on hvc0, opened anew when it
 *   can be: the death of the session's leader hangs up the terminal for the files its session
 *   had open (tty_vhangup_session). Every process the shell starts closes that pipe first.
 * - Then `__corral_session_<token>_` on both ports (the host drops what came before it there)
 *   and `__corral_ready_<token> <problems>` on hvc0.
 */
export function shellPrelude(token: string): string {
  const openPort = (fd: number, name: string) =>
    `${name}) { : >&${fd}; } 2>/dev/null || { exec ${fd}>"$__dev"; } 2>/dev/null || __corral_problem+="cannot open $__dev (${name}): another process holds it; ";;`;
  return [
    `__corral_token=${token} __corral_session=${sessionMarker(token)} __corral_problem=;`,
    `__d=\${CORRAL_PORTS_DIR:-${VSOCK_PORTS_DIR}};`,
    'for __p in /sys/class/virtio-ports/* "$__d"/corral.*; do',
    `  case $__p in "$__d"/*) read -r __dev 2>/dev/null < "$__p" || continue; __name=\${__p##*/};;`,
    `  *) read -r __name 2>/dev/null < "$__p/name" || continue; __dev=/dev/\${__p##*/};; esac;`,
    `  case $__name in ${openPort(8, STDOUT_PORT)} ${openPort(9, STDERR_PORT)} ${XFER_PORT}) __corral_xfer=$__dev;; esac;`,
    "done; unset __d __p __name __dev;",
    `{ : >&8; } 2>/dev/null || __corral_problem+="no ${STDOUT_PORT} port; ";`,
    `{ : >&9; } 2>/dev/null || __corral_problem+="no ${STDERR_PORT} port; ";`,
    `if [ -n "\${__corral_wd-}" ]; then exec {__corral_wd}>&-; fi;`,
    "exec {__corral_wd}> >(exec 8>&- 9>&-; trap '' HUP TERM INT;",
    `  exec -a corral-shell-watch "$BASH" -c 'while read -r _; do :; done; { printf "%s\\n" "$1" >/proc/self/fd/1; } 2>/dev/null || printf "%s\\n" "$1"' corral-shell-watch "__corral_died_$__corral_token");`,
    // A command in a subshell: the shell's state stays as it was.
    "__corral_exec() {",
    "  local __n=$1 __c=$2;",
    '  ( unset __n; set --; eval "$__c" ) </dev/null >&8 2>&9 8>&- 9>&- {__corral_wd}>&-;',
    '  __corral_end "$__n" $?;',
    "};",
    // A simple command, or corral's own scripts, in the shell itself: no fork.
    "__corral_fast() {",
    '  eval "$2" </dev/null >&8 2>&9 8>&- 9>&- {__corral_wd}>&-;',
    '  __corral_end "$1" $?;',
    "};",
    // A command with a limit (microseconds): it runs as a job in a process group of its own,
    // started by a process substitution that prints the group's id, then its exit status. The
    // shell waits with `read -t`, which needs no process: at the limit it signals the group
    // (SIGTERM, SIGKILL after a grace) and reports `T` instead of an exit status; `F` if the
    // command could not be started. Nothing of this reaches the command's output.
    "__corral_limit() {",
    `  local __n=$1 __e=$(( \${EPOCHREALTIME/./} + $2 )) __f __g= __r= __s __p;`,
    "  exec {__f}< <(exec {__corral_wd}>&- 2>/dev/null; set -m;",
    '    ( __c=$3; unset __n __e __f __g __r __s __p; set --; eval "$__c" ) </dev/null >&8 2>&9 8>&- 9>&- &',
    '    echo "$!"; wait "$!"; echo "$?"); __p=$!;',
    '  __corral_line "$__f" "$__e" __g && __corral_line "$__f" "$__e" __r; __s=$?;',
    '  if [ "$__s" -eq 0 ]; then exec {__f}<&-; __corral_end "$__n" "$__r"; return; fi;',
    // The limit came before the job's group was known: its start may still come (bash retries a
    // fork for up to 15 s), and a job started after its end was reported would write into the
    // next command's output. Its starter is killed, then says whether it had started it.
    `  if [ "$__s" -gt 128 ] && [ -z "$__g" ]; then kill -KILL "$__p" 2>/dev/null; IFS= read -r -t ${LATE_START_SECONDS} -u "$__f" __g; fi;`,
    '  if [ -n "$__g" ]; then',
    '    kill -TERM -- "-$__g" 2>/dev/null; kill -CONT -- "-$__g" 2>/dev/null;',
    `    if [ "$__s" -gt 128 ]; then IFS= read -r -t ${KILL_GRACE_SECONDS} -u "$__f" __r; fi;`,
    '    kill -KILL -- "-$__g" 2>/dev/null;',
    "  fi;",
    "  exec {__f}<&-;",
    '  printf "%s" "$__n" >&8; printf "%s" "$__n" >&9;',
    '  if [ "$__s" -gt 128 ]; then printf "%sT\\n" "$__n"; else printf "%sF\\n" "$__n"; fi;',
    "};",
    // Reads a line from fd $1 into $3, waiting at most until $2 (microseconds since the epoch).
    "__corral_line() {",
    `  local __l=$(( $2 - \${EPOCHREALTIME/./} )) __s;`,
    "  (( __l > 1000 )) || __l=1000;",
    "  printf -v __s '%d.%06d' $(( __l / 1000000 )) $(( __l % 1000000 ));",
    '  IFS= read -r -t "$__s" -u "$1" "$3";',
    "};",
    "__corral_end() {",
    '  printf "%s" "$1" >&8; printf "%s" "$1" >&9;',
    '  printf "%sX%d\\n" "$1" "$2";',
    "};",
    `printf "%s" "\${__corral_session}" >&8 2>/dev/null;`,
    `printf "%s" "\${__corral_session}" >&9 2>/dev/null;`,
    'printf "__corral_ready_%s %s\\n" "$__corral_token" "$__corral_problem"',
  ].join("\n");
}

/** What the prelude prints on both ports once it has run: output before it is stale. */
export function sessionMarker(token: string): string {
  return `__corral_session_${token}_`;
}
