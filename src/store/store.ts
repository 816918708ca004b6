// The manager's state, as one object: the database and a repository per table. Writes that must
// happen together go in one store.transaction(() => …): repositories' own transactions nest in it.

import { type Database, type OpenStateDatabaseOptions, openStateDatabase } from "./database.ts";
import { EventRepository } from "./events.ts";
import { ImageRepository } from "./images.ts";
import { JobRepository } from "./jobs.ts";
import { NetworkRepository } from "./networks.ts";
import { NicRepository } from "./nics.ts";
import { PortForwardRepository } from "./port-forwards.ts";
import { SnapshotRepository } from "./snapshots.ts";
import { TemplateRepository } from "./templates.ts";
import { VmRepository } from "./vms.ts";

export interface OpenStoreOptions extends OpenStateDatabaseOptions {
  /** How many events to keep; default DEFAULT_MAX_EVENTS. */
  maxEvents?: number;
}

export class Store implements Disposable {
  readonly database: Database;
  readonly vms: VmRepository;
  readonly snapshots: SnapshotRepository;
  readonly images: ImageRepository;
  readonly templates: TemplateRepository;
  readonly events: EventRepository;
  readonly jobs: JobRepository;
  readonly networks: NetworkRepository;
  readonly nics: NicRepository;
  readonly portForwards: PortForwardRepository;

  constructor(database: Database, options: { maxEvents?: number } = {}) {
    this.database = database;
    this.vms = new VmRepository(database);
    this.snapshots = new SnapshotRepository(database);
    this.images = new ImageRepository(database);
    this.templates = new TemplateRepository(database);
    this.events = new EventRepository(database, options);
    this.jobs = new JobRepository(database);
    this.networks = new NetworkRepository(database);
    this.nics = new NicRepository(database, this.networks);
    this.portForwards = new PortForwardRepository(database);
  }

  /**
   * Opens the state database in the state folder (default `$XDG_STATE_HOME/corral`, created
   * 0700), migrating it to this corral's schema. See openStateDatabase for what it throws.
   */
  static async open(options: OpenStoreOptions = {}): Promise<Store> {
    return new Store(await openStateDatabase(options), options);
  }

  /** Runs `work` in one transaction: all its writes happen, or none. */
  transaction<T>(work: () => T): T {
    return this.database.transaction(work);
  }

  /** Closes the database; closing it again does nothing. */
  close(): void {
    this.database.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
