// The manager behind `corral serve`: the state store, the events, and one service per resource.
// open() reconciles the store with the VMs that run before anyone is answered; close() lets go
// of the VMs (they run on) or stops them.
//
// Each service is constructed in open() with the store, the events and the state folder, and
// closed in close(): `vms`, `templates`, `images` (with the jobs of image builds), `networks`
// (bridged networks, or why there are none: VMs then have only QEMU's user-mode NIC) and `ports`
// (port forwards: to bridged NICs, else hostfwd rules of the user-mode NIC).

import { join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { makeDirs } from "../host/make-dirs.ts";
import { PidLock } from "../host/pid-lock.ts";
import { Store } from "../store/store.ts";
import { EventHub } from "./event-hub.ts";
import { ImageService } from "./images.ts";
import { NetworkService } from "./networks.ts";
import { PortForwardService } from "./port-forwards.ts";
import { TemplateCatalog } from "./templates.ts";
import { VmService } from "./vm-service.ts";

/** In the state folder: the pid of the daemon whose manager has it. */
const LOCK_FILE = "manager.pid";

export interface OpenManagerOptions {
  /** The state folder: the database (unless `store` is given), vms/ and snapshots/. */
  stateDir: string;
  /** An open store to use (tests); by default the store in `stateDir` is opened, and closed by close(). */
  store?: Store;
  /** The most VMs kept; default 64. */
  maxVms?: number;
  /** The user's templates folder; default `$XDG_CONFIG_HOME/corral/templates`. */
  templatesDir?: string;
  /**
   * Bridged networks: `mode` auto makes them where the host allows (NetworkService.open), off
   * (the default) never touches the host's network; `runDir` holds their dnsmasq files.
   */
  networks?: { mode: "auto" | "off"; runDir?: string | undefined };
}

export interface CloseManagerOptions {
  /** Stop every VM (ACPI, then forced after `graceMs`) instead of leaving them running. */
  stopVms?: boolean;
  /** The grace period of each stop in ms; default 30000. */
  graceMs?: number;
}

export class Manager implements AsyncDisposable {
  readonly store: Store;
  readonly stateDir: string;
  readonly events: EventHub;
  readonly vms: VmService;
  readonly templates: TemplateCatalog;
  readonly images: ImageService;
  /** The bridged networks, or the CORRAL_NETWORK_UNAVAILABLE error that says why there are none. */
  readonly networks: NetworkService | CorralError;
  /** VMs' port forwards: nftables on bridged networks, else QEMU hostfwd rules. */
  readonly ports: PortForwardService;
  readonly #ownsStore: boolean;
  readonly #lock: PidLock;
  #templatesRefused: readonly CorralError[] = [];
  #closing: Promise<void> | undefined;

  private constructor(
    options: Omit<OpenManagerOptions, "networks"> & {
      store: Store;
      networks: NetworkService | CorralError;
    },
    ownsStore: boolean,
    lock: PidLock,
  ) {
    this.store = options.store;
    this.networks = options.networks;
    this.#lock = lock;
    this.stateDir = options.stateDir;
    this.#ownsStore = ownsStore;
    this.events = new EventHub(this.store);
    this.vms = new VmService({
      store: this.store,
      events: this.events,
      stateDir: options.stateDir,
      networks: options.networks,
      ...(options.maxVms !== undefined ? { maxVms: options.maxVms } : {}),
    });
    this.ports = new PortForwardService({
      store: this.store,
      networks: options.networks,
      machineOf: (vmId) => this.vms.machineOf(vmId),
    });
    this.templates = new TemplateCatalog(this.store, options.templatesDir);
    this.images = new ImageService(this.store, options.stateDir);
  }

  /** The user template files that open() refused (invalid, or named like a built-in). */
  get templatesRefused(): readonly CorralError[] {
    return this.#templatesRefused;
  }

  /**
   * Opens the manager on `stateDir`, loads the templates (see TemplateCatalog.load) and
   * reconciles: the host's bridges, TAPs, dnsmasq instances and firewall with the store's
   * networks (when `networks.mode` is auto and the host allows them), then the VMs: claims and
   * jobs of a previous daemon are dropped, VMs that run are attached to, VMs whose VMM died are
   * marked crashed. Throws CORRAL_CONFLICT while another live process manages the folder (its
   * pid lock, manager.pid); see Store.open for what opening the store throws.
   */
  static async open(options: OpenManagerOptions): Promise<Manager> {
    await makeDirs(options.stateDir, "the state folder", 0o700);
    const lock = await PidLock.acquire(
      join(options.stateDir, LOCK_FILE),
      `the state folder ${options.stateDir} (another corral serve manages its VMs)`,
    );
    let store: Store;
    try {
      store = options.store ?? (await Store.open({ dir: options.stateDir }));
    } catch (error) {
      await lock.release();
      throw error;
    }
    const networks = await openNetworks(store, options.networks);
    const manager = new Manager({ ...options, store, networks }, options.store === undefined, lock);
    try {
      manager.#templatesRefused = (await manager.templates.load()).rejected;
      await manager.vms.reconcile();
    } catch (error) {
      await manager.close();
      throw error;
    }
    return manager;
  }

  /** Ends event streams and lets go of the VMs (or stops them); idempotent. */
  close(options: CloseManagerOptions = {}): Promise<void> {
    this.#closing ??= (async () => {
      this.events.close();
      // The exit of a VMM this process attached to is seen by polling on timers that do not
      // keep Node.js alive; with the server closed, nothing else would while VMs stop.
      const keepAlive = setInterval(() => undefined, 60_000);
      try {
        await this.vms.close(options);
      } finally {
        clearInterval(keepAlive);
      }
      await this.images.close();
      if (this.#ownsStore) this.store.close();
      await this.#lock.release();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * `corral serve --cleanup-network`: removes everything corral made on the host for networks
   * (NetworkService.cleanupHost) while no daemon manages `stateDir`; returns what it removed.
   * Throws CORRAL_CONFLICT while a daemon runs on the folder.
   */
  static async cleanupNetworks(options: {
    stateDir: string;
    runDir?: string | undefined;
  }): Promise<string[]> {
    await makeDirs(options.stateDir, "the state folder", 0o700);
    await using _lock = await PidLock.acquire(
      join(options.stateDir, LOCK_FILE),
      `the state folder ${options.stateDir} (a corral serve runs on it: stop it first)`,
    );
    return NetworkService.cleanupHost({ runDir: options.runDir });
  }
}

/**
 * The bridged networks, opened and reconciled, or why there are none: `mode` off, or the host
 * does not allow them (no root, a program missing), or the host refused to make them.
 */
async function openNetworks(
  store: Store,
  options: OpenManagerOptions["networks"],
): Promise<NetworkService | CorralError> {
  if (options?.mode !== "auto") {
    return new CorralError(
      ErrorCodes.NETWORK_UNAVAILABLE,
      "networks are off in this corral serve (--networks off): VMs have only QEMU's user-mode NIC",
    );
  }
  try {
    return (await NetworkService.open(store, { runDir: options.runDir })).service;
  } catch (error) {
    if (error instanceof CorralError && error.code === ErrorCodes.NETWORK_UNAVAILABLE) return error;
    return new CorralError(
      ErrorCodes.NETWORK_UNAVAILABLE,
      `networks could not be set up on this host: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
