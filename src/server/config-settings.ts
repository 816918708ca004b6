// The names of the daemon's settings: log levels, network modes, and each setting's environment
// variable and flag. Apart from config.ts (whose schemas load TypeBox) so that `corral --help`
// and every other command can name them without loading it.

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `auto`: bridged networks where the host allows them; `off`: never touch the host's network. */
export const NETWORK_MODES = ["auto", "off"] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

/** A setting by its dotted path. */
export type SettingPath =
  | "stateDir"
  | "templatesDir"
  | "socket"
  | "listen"
  | "logLevel"
  | "limits.maxVms"
  | "limits.maxUploadBytes"
  | "networks.mode"
  | "networks.runDir";

/** The environment variable of each setting. */
export const SETTING_VARIABLES: Record<SettingPath, string> = {
  stateDir: "CORRAL_STATE_DIR",
  templatesDir: "CORRAL_TEMPLATES_DIR",
  socket: "CORRAL_SOCKET",
  listen: "CORRAL_LISTEN",
  logLevel: "CORRAL_LOG_LEVEL",
  "limits.maxVms": "CORRAL_MAX_VMS",
  "networks.mode": "CORRAL_NETWORKS",
  "networks.runDir": "CORRAL_NETWORK_RUN_DIR",
  "limits.maxUploadBytes": "CORRAL_MAX_UPLOAD_BYTES",
};

/** The command-line flag of each setting. */
export const SETTING_FLAGS: Record<SettingPath, string> = {
  stateDir: "--state-dir",
  templatesDir: "--templates-dir",
  socket: "--socket",
  listen: "--listen",
  logLevel: "--log-level",
  "limits.maxVms": "--max-vms",
  "networks.mode": "--networks",
  "networks.runDir": "--network-run-dir",
  "limits.maxUploadBytes": "--max-upload-bytes",
};
