// The daemon's settings: defaults, then a YAML file (`--config`), then CORRAL_* environment
// variables, then flags. Every layer is checked against one TypeBox schema, and an error names
// where the bad value came from: the file and line, the variable, or the flag.

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type TSchema, Type } from "typebox";
import { Value } from "typebox/value";
import { type Document, isMap, LineCounter, parseDocument } from "yaml";
import { CorralError, describeValue, ErrorCodes } from "../errors.ts";
import { defaultSocketPath, stateDir, userTemplatesDir } from "../host/paths.ts";
import { DEFAULT_NETWORK_RUN_DIR } from "../manager/networks.ts";
import {
  LOG_LEVELS,
  type LogLevel,
  NETWORK_MODES,
  type NetworkMode,
  SETTING_FLAGS,
  SETTING_VARIABLES,
  type SettingPath,
} from "./config-settings.ts";

// host:port; the host a name, an IPv4 address or a bracketed IPv6 one; the port 0–65535.
const LISTEN_PATTERN =
  "^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):(6553[0-5]|655[0-2]\\d|65[0-4]\\d\\d|6[0-4]\\d{3}|[1-5]\\d{4}|[1-9]\\d{0,3}|0)$";

/** The settings a file, the environment or the flags may give; each is optional in each layer. */
export const DaemonSettings = Type.Object(
  {
    stateDir: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "the daemon's state folder (database, API token, VM and snapshot folders); default $XDG_STATE_HOME/corral",
      }),
    ),
    templatesDir: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "the folder of user templates (<name>.yaml); default $XDG_CONFIG_HOME/corral/templates",
      }),
    ),
    socket: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "the unix socket; default $XDG_RUNTIME_DIR/corral/corral.sock, else /run/corral/corral.sock",
      }),
    ),
    listen: Type.Optional(
      Type.String({
        pattern: LISTEN_PATTERN,
        description: "a TCP address host:port (127.0.0.1:7777, [::1]:7777; port 0 picks one)",
      }),
    ),
    logLevel: Type.Optional(Type.Enum(LOG_LEVELS, { description: "the log level (pino)" })),
    limits: Type.Optional(
      Type.Object(
        {
          maxVms: Type.Optional(
            Type.Integer({ minimum: 1, description: "the most VMs the daemon keeps; default 64" }),
          ),
          maxUploadBytes: Type.Optional(
            Type.Integer({
              minimum: 1,
              description:
                "the largest file an upload into a guest may be, in bytes; default 4 GiB",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    networks: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(
            Type.Enum(NETWORK_MODES, {
              description:
                "auto (default): bridged networks when the host allows them (root, ip, nft, dnsmasq); off: none, the host's network is never touched",
            }),
          ),
          runDir: Type.Optional(
            Type.String({
              minLength: 1,
              description: `the folder of the networks' dnsmasq files, which others must be able to enter; default ${DEFAULT_NETWORK_RUN_DIR}`,
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
type Settings = Type.Static<typeof DaemonSettings>;

export interface ListenAddress {
  host: string;
  port: number;
}

/** The daemon's resolved settings. */
export interface DaemonConfig {
  stateDir: string;
  /** The user's templates folder. */
  templatesDir: string;
  socket: string;
  /** Also listen on TCP (a bearer token is required there); undefined: the unix socket only. */
  listen: ListenAddress | undefined;
  logLevel: LogLevel;
  limits: {
    maxVms: number;
    /** The largest upload into a guest (PUT …/guest/files), in bytes. */
    maxUploadBytes: number;
  };
  /** Bridged networks: whether to make them, and where their dnsmasq files go. */
  networks: { mode: NetworkMode; runDir: string };
}

export const DEFAULT_LIMITS: DaemonConfig["limits"] = { maxVms: 64, maxUploadBytes: 4 * 2 ** 30 };

/** A setting as a string, from the environment or a flag, by its dotted path. */
type StringLayer = Partial<Record<SettingPath, string | undefined>>;

export interface LoadDaemonConfigOptions {
  /** A YAML file of settings (`--config`). */
  configFile?: string | undefined;
  /** The environment whose CORRAL_* variables override the file; empty values are ignored. */
  env?: NodeJS.ProcessEnv;
  /** Flag values by setting, on top of everything. */
  flags?: StringLayer;
}

/**
 * The daemon's settings from the file, the environment and the flags, in rising priority.
 * Throws CORRAL_INVALID_ARGUMENT naming the file and line, the variable or the flag of each bad
 * or unknown setting; CORRAL_NOT_FOUND when the file does not exist.
 */
export async function loadDaemonConfig(
  options: LoadDaemonConfigOptions = {},
): Promise<DaemonConfig> {
  const env = options.env ?? process.env;
  const fromFile = options.configFile ? await readSettingsFile(options.configFile) : {};
  const fromEnv = stringLayer(
    Object.fromEntries(
      Object.entries(SETTING_VARIABLES).map(([path, name]) => [path, env[name] || undefined]),
    ),
    SETTING_VARIABLES,
    (name) => `environment variable ${name}`,
  );
  const fromFlags = stringLayer(options.flags ?? {}, SETTING_FLAGS, (name) => name);
  const layers = [fromFile, fromEnv, fromFlags];
  const pick = <K extends keyof Settings>(key: K) =>
    layers.reduce<Settings[K]>((value, layer) => layer[key] ?? value, undefined);
  const listen = pick("listen");
  return {
    stateDir: pick("stateDir") ?? stateDir(env),
    templatesDir: pick("templatesDir") ?? userTemplatesDir(env),
    socket: pick("socket") ?? defaultSocketPath(env),
    listen: listen === undefined ? undefined : parseListenAddress(listen),
    logLevel: pick("logLevel") ?? "info",
    limits: {
      maxVms: layers.reduce((v, layer) => layer.limits?.maxVms ?? v, DEFAULT_LIMITS.maxVms),
      maxUploadBytes: layers.reduce(
        (v, layer) => layer.limits?.maxUploadBytes ?? v,
        DEFAULT_LIMITS.maxUploadBytes,
      ),
    },
    networks: {
      mode: layers.reduce<NetworkMode>((v, layer) => layer.networks?.mode ?? v, "auto"),
      runDir: layers.reduce(
        (v, layer) => layer.networks?.runDir ?? v,
        DEFAULT_NETWORK_RUN_DIR as string,
      ),
    },
  };
}

/** `host:port` (already checked against the schema's pattern) as its parts; IPv6 unbracketed. */
export function parseListenAddress(value: string): ListenAddress {
  const at = value.lastIndexOf(":");
  return {
    host: value.slice(0, at).replace(/^\[(.*)\]$/, "$1"),
    port: Number(value.slice(at + 1)),
  };
}

/** Reads and checks a settings file; relative paths in it are relative to its folder. */
async function readSettingsFile(file: string): Promise<Settings> {
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new CorralError(
      error.code === "ENOENT" ? ErrorCodes.NOT_FOUND : ErrorCodes.INVALID_ARGUMENT,
      `cannot read the config file ${file}: ${error.code === "ENOENT" ? "no such file" : error.message}`,
      { cause: error },
    );
  });
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const { line, col } = lines.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const syntax = [...doc.errors, ...doc.warnings].map(
    (error) =>
      `${where(error.pos[0])}: ${error.message.split("\n")[0]?.replace(/ at line \d+, column \d+:$/, "")}`,
  );
  if (syntax.length > 0) throw settingsError(syntax);
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw settingsError([`${where(0)}: expected a mapping of settings (key: value lines)`]);
  }
  const problems = checkSettings(
    value,
    (path) => `${where(offsetOf(doc, path))}: ${path.join(".")}`,
  );
  if (problems.length > 0) throw settingsError(problems);
  const settings = value as Settings;
  const base = dirname(resolve(file));
  return {
    ...settings,
    ...(settings.stateDir !== undefined && { stateDir: resolve(base, settings.stateDir) }),
    ...(settings.templatesDir !== undefined && {
      templatesDir: resolve(base, settings.templatesDir),
    }),
    ...(settings.socket !== undefined && { socket: resolve(base, settings.socket) }),
    ...(settings.networks?.runDir !== undefined && {
      networks: { ...settings.networks, runDir: resolve(base, settings.networks.runDir) },
    }),
  };
}

/** A layer of string values (environment, flags), converted to the schema's types and checked. */
function stringLayer(
  values: StringLayer,
  names: Record<SettingPath, string>,
  describe: (name: string) => string,
): Settings {
  const nested: Record<string, unknown> = {};
  for (const [path, text] of Object.entries(values)) {
    if (text === undefined) continue;
    const [head = "", tail] = path.split(".");
    if (tail === undefined) nested[head] = text;
    else nested[head] = { ...(nested[head] as object), [tail]: text };
  }
  const settings = Value.Convert(DaemonSettings, nested);
  const problems = checkSettings(settings, (path) =>
    describe(names[path.join(".") as SettingPath]),
  );
  if (problems.length > 0) throw settingsError(problems);
  const { stateDir: dir, templatesDir, socket, networks } = settings as Settings;
  return {
    ...(settings as Settings),
    ...(dir !== undefined && { stateDir: resolve(dir) }),
    ...(templatesDir !== undefined && { templatesDir: resolve(templatesDir) }),
    ...(socket !== undefined && { socket: resolve(socket) }),
    ...(networks?.runDir !== undefined && {
      networks: { ...networks, runDir: resolve(networks.runDir) },
    }),
  };
}

/** One line per schema violation of `value`, each starting with `label(path)`. */
function checkSettings(value: unknown, label: (path: string[]) => string): string[] {
  const problems: string[] = [];
  for (const error of Value.Errors(DaemonSettings, value)) {
    const path = error.instancePath.split("/").slice(1).map(unescapePointer);
    if (error.keyword === "additionalProperties") {
      const known = Object.keys(schemaAt(path)?.properties ?? {});
      for (const key of error.params.additionalProperties as string[]) {
        problems.push(
          `${label([...path, key])}: unknown setting (known here: ${known.join(", ")})`,
        );
      }
      continue;
    }
    // TypeBox reports each extra key twice: once as additionalProperties, once as a false schema.
    if (error.keyword === "boolean") continue;
    const got = path.reduce<unknown>(
      (object, key) => (object as Record<string, unknown>)?.[key],
      value,
    );
    problems.push(`${label(path)}: ${explain(error, schemaAt(path))}, got ${describeValue(got)}`);
  }
  return problems;
}

function explain(
  error: { keyword: string; message: string; params: Record<string, unknown> },
  schema: TSchema | undefined,
): string {
  switch (error.keyword) {
    case "enum":
      return `must be one of ${(error.params.allowedValues as string[]).join(", ")}`;
    case "pattern":
      return `must be ${(schema as { description?: string } | undefined)?.description ?? error.message}`;
    case "minLength":
      return "must not be empty";
    default:
      return error.message;
  }
}

function schemaAt(
  path: string[],
): (TSchema & { properties?: Record<string, TSchema> }) | undefined {
  let schema: (TSchema & { properties?: Record<string, TSchema> }) | undefined = DaemonSettings;
  for (const key of path) schema = schema?.properties?.[key];
  return schema;
}

/** Where `path` is in the file: the key's position when the key exists, else its parent's. */
function offsetOf(doc: Document, path: string[]): number | undefined {
  for (let depth = path.length; depth > 0; depth--) {
    const parent = depth === 1 ? doc.contents : doc.getIn(path.slice(0, depth - 1), true);
    if (!isMap(parent)) continue;
    const pair = parent.items.find(
      (item) => (item.key as { value?: unknown } | null)?.value === path[depth - 1],
    );
    const range = (pair?.key as { range?: [number, number, number] } | null)?.range;
    if (range) return range[0];
  }
  return undefined;
}

function unescapePointer(segment: string): string {
  return segment.replaceAll("~1", "/").replaceAll("~0", "~");
}

function settingsError(problems: string[]): CorralError {
  const [first = "", ...rest] = problems;
  return new CorralError(ErrorCodes.INVALID_ARGUMENT, `daemon settings: ${first}`, {
    details: rest,
  });
}
