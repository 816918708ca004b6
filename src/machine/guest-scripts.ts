// Bash snippets that wait inside the guest, so that a wait costs one round trip instead of one
// per poll. Each loop ends by itself at its time limit with exit status 124.

import { shellQuote } from "../guest/shell-quote.ts";

export const EXIT_WAIT_TIMEOUT = 124;
/** waitForUnit: the unit failed, or is inactive with nothing queued to start it. */
export const EXIT_UNIT_FAILED = 3;
export const EXIT_UNIT_INACTIVE = 4;
export const EXIT_UNIT_NOT_FOUND = 5;

const POLL_SECONDS = 0.05;
/** How long waitForUnit waits for busctl monitor to subscribe before reading the state anyway. */
const MONITOR_START_SECONDS = 5;
/** How often waitForUnit re-reads a unit's state when no signal came (a safety net). */
const SIGNAL_FALLBACK_SECONDS = 2;

/** Microseconds since the epoch, a bash builtin (no process). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
const NOW = "${EPOCHREALTIME/./}";

/**
 * Runs `command` until its exit status is zero (`untilSuccess`) or non-zero, at most `timeoutMs`.
 * Prints the stdout of the last attempt; exits 0 when the condition was met, 124 at the limit.
 */
export function untilScript(command: string, untilSuccess: boolean, timeoutMs: number): string {
  const met = untilSuccess ? "-eq" : "-ne";
  return [
    `__end=$((${NOW} + ${Math.round(timeoutMs * 1000)})); __out=/dev/shm/corral-until.$$`,
    "while :; do",
    `  ( eval ${shellQuote(command)} ) >"$__out"; __r=$?`,
    `  if [ "$__r" ${met} 0 ]; then cat "$__out"; rm -f "$__out"; exit 0; fi`,
    `  if [ ${NOW} -gt "$__end" ]; then cat "$__out"; rm -f "$__out"; exit ${EXIT_WAIT_TIMEOUT}; fi`,
    `  sleep ${POLL_SECONDS}`,
    "done",
  ].join("\n");
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
 * 3 when failed, 4 when inactive with no job pending, 5 when the unit does not exist, 124 at the
 * limit. For a system unit the wait follows systemd's PropertiesChanged signals (busctl monitor,
 * started once) and reads the new ActiveState from them, so it returns within milliseconds of
 * the change. The state is read once after the monitor has subscribed (so no change is missed)
 * and re-read every few seconds as a safety net. A user's unit is polled with systemctl.
 */
export function waitForUnitScript(unit: string, timeoutMs: number, user?: string): string {
  const jobs = systemctlCommand("list-jobs --no-pager", user);
  const path = unitObjectPath(unit);
  const query = user
    ? systemctlCommand(`show --no-pager -p LoadState -p ActiveState ${shellQuote(unit)}`, user)
    : `busctl get-property org.freedesktop.systemd1 ${path} org.freedesktop.systemd1.Unit LoadState ActiveState`;
  // Both outputs have the value last on the line: `LoadState=loaded` or `s "loaded"`.
  const readState = [
    `${query} >"$__f" 2>/dev/null; { read -r __load; read -r __active; } <"$__f"`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '__load=${__load#*=}; __load=${__load#s \\"}; __load=${__load%\\"}',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '__active=${__active#*=}; __active=${__active#s \\"}; __active=${__active%\\"}',
  ].join("; ");
  const judge = [
    '__s="LoadState=$__load ActiveState=$__active"',
    "case $__load/$__active in",
    `  not-found/*) echo "$__s"; exit ${EXIT_UNIT_NOT_FOUND} ;;`,
    '  */active) echo "$__s"; exit 0 ;;',
    `  */failed) echo "$__s"; exit ${EXIT_UNIT_FAILED} ;;`,
    "  */inactive)",
    `    if ${jobs} 2>&1 | grep -q "No jobs"; then`,
    `      ${readState}; case $__active in inactive) echo "$__s"; exit ${EXIT_UNIT_INACTIVE} ;; esac`,
    "    fi ;;",
    "esac",
    `if [ ${NOW} -gt "$__end" ]; then echo "$__s"; exit ${EXIT_WAIT_TIMEOUT}; fi`,
  ].join("\n");
  // One state file per backdoor shell ($$), reused: removing it would cost a process per wait.
  const start = `__end=$((${NOW} + ${Math.round(timeoutMs * 1000)})); __f=/dev/shm/corral-unit.$$`;
  if (user) {
    return [
      start,
      `mkfifo "$__f.pause" && exec 7<>"$__f.pause" && rm -f "$__f.pause"`,
      "while :; do",
      readState,
      judge,
      `read -r -t ${POLL_SECONDS} -u 7 __nothing`,
      "done",
    ].join("\n");
  }
  // arg0: only changes of the Unit interface, not the Service one that comes first.
  const match = `type='signal',sender='org.freedesktop.systemd1',path='${path}',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',arg0='org.freedesktop.systemd1.Unit'`;
  return [
    start,
    // In a session of its own, so that one kill ends busctl and grep together. Under TCG bash
    // reads a line in about 2 ms, so grep keeps only the lines that matter: busctl's
    // "Monitoring" notice (it is subscribed) and the ActiveState entries of the signals.
    `exec 6< <(exec setsid sh -c 'stdbuf -oL busctl monitor --match "$1" 2>&1 | grep --line-buffered -e "^Monitoring" -A2 -e "\\"ActiveState\\";"' sh "${match}")`,
    `__mon=$!; trap 'kill -- -$__mon 2>/dev/null' EXIT`,
    // The state is read once the monitor listens, so no change falls between the two.
    `read -r -t ${MONITOR_START_SECONDS} -u 6 __line`,
    readState,
    "while :; do",
    judge,
    // The value is the second line after `STRING "ActiveState";` in busctl's output.
    "  __after=-1",
    `  while read -r -t ${SIGNAL_FALLBACK_SECONDS} -u 6 __line; do`,
    "    case $__line in *'\"ActiveState\";'*) __after=2 ;; *) __after=$((__after - 1)) ;; esac",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '    if [ "$__after" -eq 0 ]; then __active=${__line#STRING \\"}; __active=${__active%\\";}; break; fi',
    "  done",
    `  [ "$__after" -eq 0 ] || { ${readState}; }`,
    "done",
  ].join("\n");
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
  return [
    `__end=$((${NOW} + ${Math.round(timeoutMs * 1000)}))`,
    "while :; do",
    `  __t=$(${ttyTextCommand(tty)}); __h=$(printf '%s' "$__t" | sha256sum | cut -c1-64)`,
    `  if [ "$__h" != ${shellQuote(knownHash ?? "")} ]; then printf '%s\\n' "$__t"; exit 0; fi`,
    `  if [ ${NOW} -gt "$__end" ]; then exit ${EXIT_WAIT_TIMEOUT}; fi`,
    "  sleep 0.1",
    "done",
  ].join("\n");
}
