import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'

// Where the rate-limit counts live: in Redis, shared by every replica, with @fastify/rate-limit's
// own Redis store (one Lua script per count: INCR, then PEXPIRE or PTTL); or in this process's
// memory, with its local store. While Redis does not answer, the counts move to memory, so that
// each replica still holds every limit on its own rather than letting traffic through unbounded
// or refusing it all. A probe tries Redis every second until it answers again.

export type StoreCallback = (err: Error | null, result?: { current: number, ttl: number }) => void

/** The two methods of @fastify/rate-limit's stores that the limiters call. */
export interface CountingStore {
  incr (key: string, cb: StoreCallback, timeWindow: number, max: number): void
  /** The count without changing it. */
  read (key: string, cb: StoreCallback, timeWindow: number, max: number): void
}

// The plugin ships its stores as CommonJS files without type declarations.
const require = createRequire(import.meta.url)
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as
  new (continueExceeding: boolean, exponentialBackoff: boolean, cache: number) => CountingStore
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as
  new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => CountingStore

/** How often a store that has fallen back tries Redis again. */
const PROBE_MS = 1000
/** Most keys counted in memory; the least recently used are forgotten first. */
const LOCAL_KEYS = 10_000

export interface FallbackEvents {
  /** Redis failed a count: from now on, counts are kept in memory. */
  fallback: (err: Error) => void
  /** Redis answers again: counts go back to it. */
  recover: () => void
}

type Method = 'incr' | 'read'

export class LimitStore implements CountingStore {
  readonly #shared: CountingStore | null
  readonly #local: CountingStore = new LocalStore(false, false, LOCAL_KEYS)
  readonly #events: FallbackEvents | null
  #fallenBack = false
  #probe: NodeJS.Timeout | null = null
  #probing = false

  /** With a Redis client, counts are shared under `namespace`; without one, they stay in memory. */
  constructor (redis: { client: Redis, namespace: string, events: FallbackEvents } | null) {
    this.#shared = redis === null ? null : new RedisStore(false, false, redis.client, redis.namespace)
    this.#events = redis?.events ?? null
  }

  incr (key: string, cb: StoreCallback, timeWindow: number, max: number): void {
    this.#count('incr', key, cb, timeWindow, max)
  }

  read (key: string, cb: StoreCallback, timeWindow: number, max: number): void {
    this.#count('read', key, cb, timeWindow, max)
  }

  /** @fastify/rate-limit asks for a store per limiter; the keys already name their bucket. */
  child (): this {
    return this
  }

  #count (method: Method, key: string, cb: StoreCallback, timeWindow: number, max: number): void {
    const shared = this.#shared
    if (shared === null || this.#fallenBack) {
      this.#local[method](key, cb, timeWindow, max)
      return
    }
    shared[method](key, (err, result) => {
      if (err === null) {
        cb(null, result)
        return
      }
      this.#fallBack(err)
      this.#local[method](key, cb, timeWindow, max)
    }, timeWindow, max)
  }

  #fallBack (err: Error): void {
    if (this.#fallenBack) return
    this.#fallenBack = true
    this.#events?.fallback(err)
    this.#probe = setInterval(() => this.#tryShared(), PROBE_MS)
    this.#probe.unref()
  }

  /** Counts on a key of its own, so that the probe needs exactly the commands a real count needs. */
  #tryShared (): void {
    if (this.#probing || this.#shared === null) return
    this.#probing = true
    this.#shared.incr('probe', (err) => {
      this.#probing = false
      if (err === null && this.#fallenBack) this.#recover()
    }, PROBE_MS, 1)
  }

  #recover (): void {
    this.#fallenBack = false
    if (this.#probe) clearInterval(this.#probe)
    this.#probe = null
    this.#events?.recover()
  }

  close (): void {
    if (this.#probe) clearInterval(this.#probe)
    this.#probe = null
  }
}
