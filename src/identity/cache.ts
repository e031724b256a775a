import type { IdentityStore } from './store.js'
import type { Identity } from './records.js'

// A replica's memory of recent lookups. It is used only while the store is hearing invalidations,
// so that a revocation or a binding change on any replica drops the entry everywhere at once;
// while deaf, every request reads the store. Misses are never cached.

interface Entry { identity: Identity, until: number }

export class IdentityCache {
  readonly #entries = new Map<string, Entry>()
  readonly #store: IdentityStore

  constructor (store: IdentityStore, readonly ttlMs: number, readonly size: number) {
    this.#store = store
    store.onInvalidate((key) => this.#invalidate(key))
  }

  /** True when a lookup of this digest would be answered from memory, without the store. */
  holds (digest: string, now: number): boolean {
    const usable = this.ttlMs > 0 && this.size > 0 && this.#store.hearing
    return usable && (this.#entries.get(digest)?.until ?? 0) > now
  }

  async lookup (digest: string, now: number): Promise<Identity | null> {
    const usable = this.ttlMs > 0 && this.size > 0 && this.#store.hearing
    const hit = usable ? this.#entries.get(digest) : undefined
    if (hit && hit.until > now) return hit.identity
    const identity = await this.#store.lookup(digest)
    if (identity && usable && this.#store.hearing) this.#remember(digest, identity, now)
    return identity
  }

  #remember (digest: string, identity: Identity, now: number): void {
    this.#entries.delete(digest)
    if (this.#entries.size >= this.size) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
    this.#entries.set(digest, { identity, until: now + this.ttlMs })
  }

  #invalidate (key: string): void {
    if (key === '*') return this.#entries.clear()
    if (key.startsWith('token:')) {
      this.#entries.delete(key.slice('token:'.length))
      return
    }
    const user = key.startsWith('user:') ? key.slice('user:'.length) : null
    for (const [digest, entry] of this.#entries) {
      if (user === null || entry.identity.token.user === user) this.#entries.delete(digest)
    }
  }
}
