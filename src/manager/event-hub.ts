// The manager's events: each is appended to the store (so a client that reconnects can resume
// after the last id it saw) and then handed to the listeners of this process, in order. VM state
// changes, snapshots, and the images helper's job progress all go through publish().

import type { EventFilter, NewEvent, StoredEvent } from "../store/events.ts";
import type { Store } from "../store/store.ts";

export type { StoredEvent };

export type EventListener = (event: StoredEvent) => void;

export class EventHub {
  readonly #store: Store;
  readonly #listeners = new Set<EventListener>();
  readonly #closeListeners = new Set<() => void>();
  #isClosed = false;

  constructor(store: Store) {
    this.#store = store;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Records `event` and hands it to every listener; returns it with its id and time. */
  publish(event: NewEvent): StoredEvent {
    const stored = this.#store.events.append(event);
    for (const listener of this.#listeners) listener(stored);
    return stored;
  }

  /**
   * Calls `listener` with every event published from now on; returns the unsubscribe function.
   * `onClose` runs once when the manager closes (an events stream ends then).
   */
  subscribe(listener: EventListener, onClose?: () => void): () => void {
    this.#listeners.add(listener);
    if (onClose) this.#closeListeners.add(onClose);
    return () => {
      this.#listeners.delete(listener);
      if (onClose) this.#closeListeners.delete(onClose);
    };
  }

  /** Events already stored, the oldest first (EventFilter: afterId, vmId, limit). */
  list(filter: EventFilter = {}): StoredEvent[] {
    return this.#store.events.list(filter);
  }

  /** The id of the latest event; 0 when there is none. */
  lastId(): number {
    return this.#store.events.lastId();
  }

  /** Ends every subscription (calling its onClose); later publishes reach no listener. */
  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    const closing = [...this.#closeListeners];
    this.#listeners.clear();
    this.#closeListeners.clear();
    for (const onClose of closing) onClose();
  }
}
