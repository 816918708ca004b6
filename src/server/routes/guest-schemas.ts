// The guest routes' request and answer shapes as TypeBox schemas (and so the OpenAPI document):
// exec, files, and the views of what GuestOps returns (system info, processes, services, logs,
// health, capabilities).

import { Type } from "typebox";

const MAX_EXEC_TIMEOUT_MS = 86_400_000;

/** What runs: the fields a one-shot exec and the first frame of a WebSocket exec share. */
const execFields = {
  command: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "a command line for the guest's shell (bash on Linux, PowerShell on Windows); give this or argv",
    }),
  ),
  argv: Type.Optional(
    Type.Array(Type.String(), {
      minItems: 1,
      description: "a program and its arguments, run without a shell; give this or command",
    }),
  ),
  env: Type.Optional(
    Type.Record(Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }), Type.String(), {
      description: "variables added to the command's environment",
    }),
  ),
  cwd: Type.Optional(Type.String({ minLength: 1, description: "its working folder" })),
  user: Type.Optional(
    Type.String({ minLength: 1, description: "run as this user (default root / the agent's)" }),
  ),
  timeoutMs: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_EXEC_TIMEOUT_MS,
      description:
        "kill the command in the guest after this many ms; without it, it runs until it ends",
    }),
  ),
};

export const ExecBody = Type.Object(
  {
    ...execFields,
    stdin: Type.Optional(
      Type.String({
        contentEncoding: "base64",
        description: "bytes for the command's standard input, base64",
      }),
    ),
  },
  { additionalProperties: false },
);

export const ExecReply = Type.Object({
  exitCode: Type.Integer({
    description:
      "the command's exit status; 127 when the program does not exist, 128+n when signal n ended it",
  }),
  stdout: Type.String(),
  stderr: Type.String(),
  encoding: Type.Union([Type.Literal("utf8"), Type.Literal("base64")], {
    description: "utf8: stdout and stderr are text; base64: one of them was not valid UTF-8",
  }),
  isTimedOut: Type.Boolean({ description: "it ran past timeoutMs and was killed in the guest" }),
  isStdoutTruncated: Type.Boolean({ description: "the channel kept only the first bytes" }),
  isStderrTruncated: Type.Boolean(),
  durationMs: Type.Number({ description: "from the request to the command's end, in ms" }),
});

/** The first frame of a WebSocket exec: what runs, and how. */
export const ExecStart = Type.Object(
  {
    ...execFields,
    tty: Type.Optional(Type.Boolean({ description: "a pseudo-terminal in the guest" })),
    columns: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    rows: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    detach: Type.Optional(
      Type.Boolean({ description: "the command outlives a dropped connection (default: killed)" }),
    ),
  },
  { additionalProperties: false },
);

/** What a client may send after the first frame. */
export const ExecClientFrame = Type.Union([
  Type.Object(
    { type: Type.Literal("stdin"), data: Type.String({ contentEncoding: "base64" }) },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal("eof") }, { additionalProperties: false }),
  Type.Object(
    { type: Type.Literal("signal"), signal: Type.String({ pattern: "^(SIG)?[A-Z0-9+-]{1,12}$" }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal("resize"),
      columns: Type.Integer({ minimum: 1, maximum: 10_000 }),
      rows: Type.Integer({ minimum: 1, maximum: 10_000 }),
    },
    { additionalProperties: false },
  ),
]);

export const GuestPathQuery = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: "an absolute path in the guest (/etc/hosts; C:\\Windows\\win.ini); no '..'",
    }),
  },
  { additionalProperties: false },
);

export const PutFileQuery = Type.Object(
  {
    ...GuestPathQuery.properties,
    mode: Type.Optional(
      Type.String({ pattern: "^0?[0-7]{3,4}$", description: "octal mode, e.g. 0644" }),
    ),
    uid: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_294 })),
    gid: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_294 })),
    archive: Type.Optional(
      Type.Literal("tar", {
        description:
          "the body is a tar archive to unpack into the folder at path (made when missing); mode, uid and gid do not apply",
      }),
    ),
  },
  { additionalProperties: false },
);

export const DeleteFileQuery = Type.Object(
  {
    ...GuestPathQuery.properties,
    recursive: Type.Optional(Type.Boolean({ description: "also a folder and all it holds" })),
  },
  { additionalProperties: false },
);

export const Sha256Header = Type.String({
  pattern: "^[0-9a-fA-F]{64}$",
  description: "the sha256 of the whole file, hex",
});

export const PutFileReply = Type.Object({
  path: Type.String(),
  sizeBytes: Type.Integer(),
  sha256: Type.String({ description: "of the bytes written, computed in the guest" }),
});

export const GuestCapabilitiesView = Type.Object({
  channel: Type.Union([Type.Literal("backdoor"), Type.Literal("qga")], {
    description: "backdoor: corral's shell on hvc0; qga: the QEMU guest agent",
  }),
  os: Type.Union([Type.Literal("linux"), Type.Literal("windows")]),
  streaming: Type.Boolean({ description: "output as it comes (WebSocket exec)" }),
  interactiveStdin: Type.Boolean({ description: "stdin while the command runs" }),
  pty: Type.Boolean({ description: "tty: true in a WebSocket exec" }),
  signals: Type.Boolean({ description: "signal frames to a running command" }),
  maxOutputBytes: Type.Integer({ description: "the most of each stream a one-shot exec keeps" }),
});

export const PingReply = Type.Object({
  roundTripMs: Type.Number({ description: "one round trip to the guest's channel, in ms" }),
  channel: Type.String(),
});

export const SystemInfoView = Type.Object({
  os: Type.Object({
    family: Type.Union([Type.Literal("linux"), Type.Literal("windows")]),
    name: Type.String(),
    version: Type.String(),
    kernel: Type.String(),
  }),
  hostname: Type.String(),
  cpus: Type.Integer(),
  memory: Type.Object({ totalBytes: Type.Number(), availableBytes: Type.Number() }),
  filesystems: Type.Array(
    Type.Object({
      mountpoint: Type.String(),
      type: Type.String(),
      totalBytes: Type.Number(),
      usedBytes: Type.Number(),
    }),
  ),
  interfaces: Type.Array(
    Type.Object({
      name: Type.String(),
      mac: Type.Union([Type.String(), Type.Null()]),
      addresses: Type.Array(Type.String()),
    }),
  ),
  uptimeS: Type.Number(),
  users: Type.Array(Type.String(), { description: "users logged in" }),
});

export const ProcessView = Type.Object({
  pid: Type.Integer(),
  user: Type.String(),
  command: Type.String(),
  cpuPercent: Type.Number(),
  rssBytes: Type.Number(),
});

export const KillQuery = Type.Object(
  {
    signal: Type.Optional(
      Type.String({
        pattern: "^(SIG)?[A-Z0-9+-]{1,12}$",
        default: "TERM",
        description: "a signal name (TERM, KILL, HUP…); default TERM",
      }),
    ),
  },
  { additionalProperties: false },
);

export const HealthView = Type.Object({
  agentRoundTripMs: Type.Number(),
  systemState: Type.String({ description: "systemd's is-system-running, or Windows' equivalent" }),
  load1: Type.Union([Type.Number(), Type.Null()]),
  memoryAvailableBytes: Type.Number(),
  diskFreeBytes: Type.Number(),
});

export const ShutdownBody = Type.Object(
  {
    mode: Type.Optional(
      Type.Union([Type.Literal("powerdown"), Type.Literal("reboot")], {
        description: "default powerdown",
      }),
    ),
  },
  { additionalProperties: false },
);

export const ServiceView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  state: Type.String({ description: "Linux: active, inactive, failed…; Windows: Running…" }),
  startup: Type.String({ description: "Linux: enabled, disabled, static…; Windows: Automatic…" }),
});

export const ServiceParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 63, description: "the VM's id or name" }),
  name: Type.String({
    pattern: "^[A-Za-z0-9@._:\\\\ -]{1,256}$",
    description: "a systemd unit (nginx, nginx.service) or a Windows service name",
  }),
  action: Type.Union([Type.Literal("start"), Type.Literal("stop"), Type.Literal("restart")]),
});

export const LogsQuery = Type.Object(
  {
    since: Type.Optional(
      Type.String({
        pattern: "^(\\d+[smhd]|\\d{4}-\\d{2}-\\d{2}([T ][0-9:.]+)?(Z|[+-]\\d{2}:?\\d{2})?)$",
        description: "entries from then on: an ISO 8601 time, or an age such as 30s, 10m, 2h, 1d",
      }),
    ),
    unit: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9@._:\\\\ -]{1,256}$",
        description: "Linux: a systemd unit; Windows: an event log (System, Application…)",
      }),
    ),
    identifier: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9@._:/ -]{1,256}$",
        description: "Linux: a syslog identifier (logger -t); Windows: an event's provider",
      }),
    ),
    priority: Type.Optional(
      Type.String({
        pattern: "^([0-7]|emerg|alert|crit|err|warning|notice|info|debug)$",
        description:
          "the least urgent priority shown, 0 (emerg) to 7 (debug) or its name; Windows levels map onto it",
      }),
    ),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        description: "the latest this many (default 1000)",
      }),
    ),
    follow: Type.Optional(
      Type.Boolean({
        description: "stream new entries as server-sent events (event: log), polling the guest",
      }),
    ),
  },
  { additionalProperties: false },
);

export const LogEntryView = Type.Object({
  time: Type.String({ description: "ISO 8601" }),
  priority: Type.Integer({ description: "0 (emerg) – 7 (debug)" }),
  source: Type.String({ description: "the program (syslog identifier) or provider" }),
  message: Type.String(),
  unit: Type.Optional(Type.String({ description: "Linux: the systemd unit that logged it" })),
  logName: Type.Optional(Type.String({ description: "Windows: the event log" })),
  eventId: Type.Optional(Type.Integer({ description: "Windows: the event's id" })),
});
