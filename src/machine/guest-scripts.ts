// Bash snippets that wait inside the guest, so that a wait costs one round trip instead of one
// per poll (each loop ends by itself at its time limit with exit status 124), and the one that
// sets a restored guest's clock.

import { shellQuote } from "../guest/shell-quote.ts";

export const EXIT_WAIT_TIMEOUT = 124;
/** waitForUnit: the unit failed, or is inactive with nothing queued to start it. */
export const EXIT_UNIT_FAILED = 3;
export const EXIT_UNIT_INACTIVE = 4;
export const EXIT_UNIT_NOT_FOUND = 5;
/** waitForUnit with `user`: the guest has no such user. */
export const EXIT_NO_SUCH_USER = 6;

const POLL_SECONDS = 0.05;
/** How long waitForUnit waits for its D-Bus monitor to subscribe before reading the state anyway. */
const MONITOR_START_SECONDS = 5;
/** How often waitForUnit re-reads a unit's state when no signal came (a safety net). */
const SIGNAL_FALLBACK_SECONDS = 2;

/** Microseconds since the epoch, a bash builtin (no process). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
const NOW = "${EPOCHREALTIME/./}";

/**
 * `timeoutMs` in whole microseconds for bash's 64-bit arithmetic: a huge or infinite timeout
 * becomes 2^53 µs (285 years) rather than a float (`1e+21`, `Infinity`) bash cannot add.
 */
function guestMicros(timeoutMs: number): number {
  return Math.min(Math.round(timeoutMs * 1000), Number.MAX_SAFE_INTEGER);
}

/**
 * Wraps a wait script's body as a function that the backdoor shell runs itself, so no subshell
 * has to be forked and reaped: the reply leaves as soon as the wait is over. The body ends with
 * `return`, never `exit`. Afterwards the process group `__corral_mon` the body may have started
 * is ended and fds 6 and 7 are closed, so the shell is left as it was.
 */
function inShellScript(body: string[]): string {
  return [
    "__corral_wait() {",
    ...body.map((line) => `  ${line}`),
    "}",
    "__corral_wait_end() {",
    '  if [ -n "$__corral_mon" ]; then kill -- "-$__corral_mon" 2>/dev/null; fi',
    "  exec 6<&- 7<&-; unset __corral_mon; return $1",
    "}",
    "__corral_mon=; __corral_wait; __corral_wait_end $?",
  ].join("\n");
}

/**
 * Runs `command` until its exit status is zero (`untilSuccess`) or non-zero, at most `timeoutMs`.
 * Prints the stdout of the last attempt; exits 0 when the condition was met, 124 at the limit.
 */
export function untilScript(command: string, untilSuccess: boolean, timeoutMs: number): string {
  const met = untilSuccess ? "-eq" : "-ne";
  return inShellScript([
    `local __end=$((${NOW} + ${guestMicros(timeoutMs)})) __out=/dev/shm/corral-until.$$ __r`,
    "while :; do",
    `  ( eval ${shellQuote(command)} ) >"$__out"; __r=$?`,
    `  if [ "$__r" ${met} 0 ]; then cat "$__out"; rm -f "$__out"; return 0; fi`,
    `  if [ ${NOW} -gt "$__end" ]; then cat "$__out"; rm -f "$__out"; return ${EXIT_WAIT_TIMEOUT}; fi`,
    `  sleep ${POLL_SECONDS}`,
    "done",
  ]);
}

/** `systemctl` for root, or for `user` in their session manager. */
export function systemctlCommand(args: string, user?: string): string {
  if (!user) return `systemctl ${args}`;
  const inner = `XDG_RUNTIME_DIR=/run/user/$(id -u) systemctl --user ${args}`;
  return `su -l ${shellQuote(user)} --shell /bin/sh -c ${shellQuote(inner)}`;
}

/** The D-Bus object path of a systemd unit (systemd's bus_label_escape). */
export function unitObjectPath(unit: string): string {
  let label = "";
  for (const [index, char] of [...Buffer.from(unit)].entries()) {
    const isAlnum = /[A-Za-z0-9]/.test(String.fromCharCode(char));
    const isLeadingDigit = index === 0 && /[0-9]/.test(String.fromCharCode(char));
    label +=
      isAlnum && !isLeadingDigit
        ? String.fromCharCode(char)
        : `_${char.toString(16).padStart(2, "0")}`;
  }
  return `/org/freedesktop/systemd1/unit/${label || "_"}`;
}

/**
 * Waits for `unit` to be active. Prints its last load and active state; exits 0 when active,
 * 3 when failed, 4 when inactive with no job pending, 5 when the unit does not exist, 6 when
 * `user` does not exist, 124 at the limit. For a system unit the wait follows systemd's
 * PropertiesChanged signals (dbus-monitor, else busctl monitor, started once) and reads the new
 * ActiveState from them, so it returns within milliseconds of the change. The state is read once after the monitor has subscribed (so no change is missed)
 * and re-read every few seconds as a safety net. A user's unit is polled with systemctl, run
 * as the user without a login: su's PAM session would cost three times as much per poll.
 */
export function waitForUnitScript(unit: string, timeoutMs: number, user?: string): string {
  const asUser = (args: string) =>
    `setpriv --reuid="$__uid" --regid="$__gid" --init-groups env XDG_RUNTIME_DIR="/run/user/$__uid" systemctl --user ${args}`;
  const jobs = user ? asUser("list-jobs --no-pager") : "systemctl list-jobs --no-pager";
  const path = unitObjectPath(unit);
  const query = user
    ? asUser(`show --no-pager -p LoadState -p ActiveState ${shellQuote(unit)}`)
    : `busctl get-property org.freedesktop.systemd1 ${path} org.freedesktop.systemd1.Unit LoadState ActiveState`;
  // Both outputs have the value last on the line: `LoadState=loaded` or `s "loaded"`.
  const defineReadState = [
    "__corral_state() {",
    `  ${query} >"$__f" 2>/dev/null; { read -r __load; read -r __active; } <"$__f"`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '  __load=${__load#*=}; __load=${__load#s \\"}; __load=${__load%\\"}',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '  __active=${__active#*=}; __active=${__active#s \\"}; __active=${__active%\\"}',
    "}",
  ];
  const judge = [
    '__s="LoadState=$__load ActiveState=$__active"',
    "case $__load/$__active in",
    `  not-found/*) echo "$__s"; return ${EXIT_UNIT_NOT_FOUND} ;;`,
    '  */active) echo "$__s"; return 0 ;;',
    `  */failed) echo "$__s"; return ${EXIT_UNIT_FAILED} ;;`,
    "  */inactive)",
    `    if ${jobs} 2>&1 | grep -q "No jobs"; then`,
    `      __corral_state; case $__active in inactive) echo "$__s"; return ${EXIT_UNIT_INACTIVE} ;; esac`,
    "    fi ;;",
    "esac",
    `if [ ${NOW} -gt "$__end" ]; then echo "$__s"; return ${EXIT_WAIT_TIMEOUT}; fi`,
  ];
  // One state file per backdoor shell ($$), reused: removing it would cost a process per wait.
  const start = `local __end=$((${NOW} + ${guestMicros(timeoutMs)})) __f=/dev/shm/corral-unit.$$ __load __active __s __line`;
  if (user) {
    const name = shellQuote(user);
    return inShellScript([
      start,
      "local __uid __gid",
      `__uid=$(id -u ${name} 2>/dev/null) && __gid=$(id -g ${name}) || return ${EXIT_NO_SUCH_USER}`,
      ...defineReadState,
      `mkfifo "$__f.pause" && exec 7<>"$__f.pause" && rm -f "$__f.pause"`,
      "while :; do",
      "  __corral_state",
      ...judge.map((line) => `  ${line}`),
      `  read -r -t ${POLL_SECONDS} -u 7 __line`,
      "done",
    ]);
  }
  // arg0: only changes of the Unit interface, not the Service one that comes first.
  const match = `type='signal',sender='org.freedesktop.systemd1',path='${path}',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',arg0='org.freedesktop.systemd1.Unit'`;
  // grep passes on only the lines that matter, as bash reads a pipe one byte per system call:
  // the monitor's notice that it has subscribed and the signals' new ActiveState.
  // dbus-monitor (libdbus) hands a signal on in about half the time busctl takes under TCG.
  const dbusMonitor = `dbus-monitor --system "$1" 2>&1 | grep --line-buffered -A1 -e "member=NameLost" -e '"ActiveState"'`;
  const busctlMonitor = `busctl monitor --json=short --match "$1" 2>&1 | grep --line-buffered -o -e ^Monitoring -e '"ActiveState":{"type":"s","data":"[a-z-]*'`;
  return inShellScript([
    start,
    ...defineReadState,
    "local __monitor",
    `if command -v dbus-monitor >/dev/null; then __monitor=${shellQuote(dbusMonitor)}; else __monitor=${shellQuote(busctlMonitor)}; fi`,
    // In a session of its own, so that one kill ends the monitor and grep together.
    `exec 6< <(exec setsid sh -c "$__monitor" sh "${match}" 2>/dev/null)`,
    "__corral_mon=$!",
    // The state is read once the monitor listens, so no change falls between the two.
    `while read -r -t ${MONITOR_START_SECONDS} -u 6 __line; do case $__line in *NameLost*|Monitoring*) break ;; esac; done`,
    "__corral_state",
    "while :; do",
    ...judge.map((line) => `  ${line}`),
    `  if read -r -t ${SIGNAL_FALLBACK_SECONDS} -u 6 __line; then`,
    // `variant   string "active"` (dbus-monitor) or `"ActiveState":{"type":"s","data":"active`.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '    case $__line in *variant*|*\'"data":"\'*) __active=${__line%\\"}; __active=${__active##*\\"} ;; esac',
    // No signal for a while: re-read. The monitor has ended: poll.
    "  elif [ $? -gt 128 ]; then __corral_state",
    `  else __corral_state; sleep ${POLL_SECONDS}`,
    "  fi",
    "done",
  ]);
}

/** Exit status 0 when something listens on TCP `port` at `address`. */
export function openPortCommand(port: number, address: string): string {
  return `(exec 3<>/dev/tcp/${address}/${port}) 2>/dev/null`;
}

/** Exit status 0 when a unix socket at `path` accepts connections (stream) or exists (datagram). */
export function openUnixSocketCommand(path: string, isDatagram: boolean): string {
  const kind = isDatagram ? "u_dgr" : "u_str";
  const states = isDatagram ? "-a" : "-l";
  return `[ -S ${shellQuote(path)} ] && ss -x ${states}nH | awk -v p=${shellQuote(path)} '$1 == "${kind}" && $5 == p { found = 1 } END { exit !found }'`;
}

/** Prints the text on virtual terminal `tty`, one screen line per line. */
export function ttyTextCommand(tty: number): string {
  return `fold -w "$(stty -F /dev/tty${tty} size | cut -d' ' -f2)" /dev/vcs${tty}`;
}

/**
 * Prints the text of `tty` once it differs from the screen whose sha256 is `knownHash` (or at
 * once when none is given), waiting at most `timeoutMs`; exit status 124 when nothing changed.
 */
export function ttyChangeScript(
  tty: number,
  knownHash: string | undefined,
  timeoutMs: number,
): string {
  return inShellScript([
    `local __end=$((${NOW} + ${guestMicros(timeoutMs)})) __t __h`,
    "while :; do",
    `  __t=$(${ttyTextCommand(tty)}); __h=$(printf '%s' "$__t" | sha256sum | cut -c1-64)`,
    `  if [ "$__h" != ${shellQuote(knownHash ?? "")} ]; then printf '%s\\n' "$__t"; return 0; fi`,
    `  if [ ${NOW} -gt "$__end" ]; then return ${EXIT_WAIT_TIMEOUT}; fi`,
    "  sleep 0.1",
    "done",
  ]);
}

/** Where the image's clock setter (recipes/debian-12, `clock-setter`) reads requests and answers. */
const CLOCK_REQUESTS = "/run/corral/clock";
const CLOCK_ANSWERS = "/run/corral/clock-done";
/** How long the shell waits for the setter before it runs `date -s` instead. */
const CLOCK_ANSWER_WAIT_SECONDS = 2;
/** How far from the time sent the guest's clock may be once it counts as set. */
const CLOCK_SKEW_MICROS = 1_000_000;

/**
 * Setting the clock of a guest restored from a snapshot, which wakes with the time the snapshot
 * was taken at, to `epochMs` (milliseconds since the epoch). A process start costs 50-100 ms in
 * a restored guest under TCG (its code is cold in TCG's cache): the image's clock setter, already
 * running, does it instead. `request` is a line that hands the setter the time (a struct timespec,
 * as bytes), which the shell runs before it reads `script`, so that the setter works while the
 * shell does; `script` waits for it, and runs `date -s` when the clock is still off: in a guest
 * without a setter, or whose setter does not answer.
 */
export function setClockScripts(epochMs: number): { request: string; script: string } {
  const micros = Math.round(epochMs * 1000);
  const seconds = Math.floor(micros / 1e6);
  const timespec = Buffer.alloc(16);
  timespec.writeBigInt64LE(BigInt(seconds));
  timespec.writeBigInt64LE(BigInt((micros - seconds * 1e6) * 1000), 8);
  const bytes = [...timespec].map((byte) => `\\x${byte.toString(16).padStart(2, "0")}`).join("");
  return {
    // A FIFO opened read-write never blocks, whether or not the setter runs.
    request: `[ -p ${CLOCK_REQUESTS} ] && printf '${bytes}' 1<>${CLOCK_REQUESTS} 2>/dev/null`,
    script: [
      "__a= __r= __u0= __u= __t=;",
      // Time passed is read from /proc/uptime: the clock itself jumps when the setter sets it.
      "read -r __u0 _ </proc/uptime;",
      `if [ -p ${CLOCK_ANSWERS} ] && exec {__a}<>${CLOCK_ANSWERS}; then`,
      // bash's `read -t` ends at once when the clock jumps: the clock itself says it was set.
      `  while IFS= read -r -t ${CLOCK_ANSWER_WAIT_SECONDS} -u "$__a" __r && [ "$__r" != "ok ${seconds}" ]; do :; done;`,
      "  exec {__a}<&-;",
      "fi;",
      "read -r __u _ </proc/uptime;",
      // The time sent, plus what passed since this script began (centiseconds in /proc/uptime).
      `(( __t = ${micros} + (10#\${__u/./} - 10#\${__u0/./}) * 10000 ));`,
      `if (( ${NOW} - __t > ${CLOCK_SKEW_MICROS} || __t - ${NOW} > ${CLOCK_SKEW_MICROS} )); then`,
      "  printf -v __t '%d.%06d' $(( __t / 1000000 )) $(( __t % 1000000 ));",
      '  date -s "@$__t" >/dev/null;',
      "fi; unset __a __r __u0 __u __t",
    ].join("\n"),
  };
}
