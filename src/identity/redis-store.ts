import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import type { RedisStoreConfig } from '../config/types.js'
import type { IdentityStore } from './store.js'
import type { Identity, TokenRecord, UserRecord } from './records.js'

// The shared store. Keys, under the configured prefix:
//   token:<digest>   a TokenRecord as JSON          tokens    hash of token id -> digest
//   user:<name>      a UserRecord as JSON           users     set of user names
//   object:<kind>:<id>  the project of a Label Studio object     session:<sha256>  the user of a session
// (both with an expiry)
// Changes are published on the channel <prefix>invalidate so that every replica drops its cache.

export function redisOptions (config: RedisStoreConfig) {
  const tls = config.tls
  return {
    ...(config.username === null ? {} : { username: config.username }),
    ...(config.password === null ? {} : { password: config.password }),
    ...(tls === null
      ? {}
      : {
          tls: {
            ...(tls.ca === null ? {} : { ca: readFileSync(tls.ca) }),
            ...(tls.cert === null ? {} : { cert: readFileSync(tls.cert) }),
            ...(tls.key === null ? {} : { key: readFileSync(tls.key) }),
            ...(tls.servername === null ? {} : { servername: tls.servername })
          }
        }),
    connectTimeout: config.connectTimeoutMs,
    commandTimeout: config.commandTimeoutMs,
    // Fail fast while disconnected: a queued command would hold the request until Redis returns,
    // and the gateway must answer 503 instead.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: false
  }
}

/** Resolves once the client can take commands; rejects if it cannot within the connect timeout. */
export async function redisReady (client: Redis, config: RedisStoreConfig): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`Redis at ${config.url} is not ready after ${config.connectTimeoutMs} ms`))
    }, config.connectTimeoutMs)
    const onReady = (): void => { cleanup(); resolve() }
    const cleanup = (): void => { clearTimeout(timer); client.off('ready', onReady) }
    client.on('ready', onReady)
  })
}

function parse<T> (json: string | null | undefined): T | null {
  return json === null || json === undefined ? null : JSON.parse(json) as T
}

export class RedisIdentityStore implements IdentityStore {
  readonly kind = 'redis' as const
  readonly #client: Redis
  readonly #prefix: string
  readonly #config: RedisStoreConfig
  #subscriber: Redis | null = null
  #listeners: Array<(key: string) => void> = []
  #hearing = false

  constructor (config: RedisStoreConfig) {
    this.#config = config
    this.#prefix = config.keyPrefix
    this.#client = new Redis(config.url, redisOptions(config))
    // Connection errors surface as rejected commands; the 'error' event only needs a listener so
    // that it does not crash the process. The gateway logs outages through its readiness checks.
    this.#client.on('error', () => {})
  }

  get hearing (): boolean {
    return this.#hearing
  }

  #key (kind: string, id: string): string {
    return `${this.#prefix}${kind}:${id}`
  }

  async lookup (digest: string): Promise<Identity | null> {
    const token = parse<TokenRecord>(await this.#client.get(this.#key('token', digest)))
    if (!token) return null
    const user = await this.getUser(token.user)
    return { token, user }
  }

  async createToken (record: TokenRecord): Promise<boolean> {
    const created = await this.#client.set(this.#key('token', record.digest), JSON.stringify(record), 'NX')
    if (created === null) return false
    await this.#client.hset(`${this.#prefix}tokens`, record.id, record.digest)
    return true
  }

  async listTokens (): Promise<TokenRecord[]> {
    const digests = Object.values(await this.#client.hgetall(`${this.#prefix}tokens`))
    if (digests.length === 0) return []
    const values = await this.#client.mget(digests.map((d) => this.#key('token', d)))
    return values.map((v) => parse<TokenRecord>(v)).filter((r): r is TokenRecord => r !== null)
  }

  async revokeToken (id: string, at: number): Promise<TokenRecord | null> {
    const digest = await this.#client.hget(`${this.#prefix}tokens`, id)
    if (!digest) return null
    const record = parse<TokenRecord>(await this.#client.get(this.#key('token', digest)))
    if (!record) return null
    const revoked = { ...record, revokedAt: record.revokedAt ?? at }
    await this.#client.set(this.#key('token', digest), JSON.stringify(revoked))
    await this.#client.publish(`${this.#prefix}invalidate`, `token:${digest}`)
    return revoked
  }

  async getUser (user: string): Promise<UserRecord | null> {
    return parse<UserRecord>(await this.#client.get(this.#key('user', user)))
  }

  async putUser (record: UserRecord): Promise<void> {
    await this.#client.multi()
      .set(this.#key('user', record.user), JSON.stringify(record))
      .sadd(`${this.#prefix}users`, record.user)
      .exec()
    await this.#client.publish(`${this.#prefix}invalidate`, `user:${record.user}`)
  }

  async listUsers (): Promise<UserRecord[]> {
    const names = (await this.#client.smembers(`${this.#prefix}users`)).sort()
    if (names.length === 0) return []
    const values = await this.#client.mget(names.map((n) => this.#key('user', n)))
    return values.map((v) => parse<UserRecord>(v)).filter((r): r is UserRecord => r !== null)
  }

  async recall (key: string): Promise<string | null> {
    return await this.#client.get(`${this.#prefix}${key}`)
  }

  async remember (key: string, value: string, ttlMs: number): Promise<void> {
    await this.#client.set(`${this.#prefix}${key}`, value, 'PX', Math.max(1, Math.round(ttlMs)))
  }

  async ready (): Promise<void> {
    await redisReady(this.#client, this.#config)
  }

  async ping (): Promise<void> {
    await this.#client.ping()
  }

  onInvalidate (listener: (key: string) => void): void {
    this.#listeners.push(listener)
    if (this.#subscriber) return
    const channel = `${this.#prefix}invalidate`
    const subscriber = new Redis(this.#config.url, { ...redisOptions(this.#config), enableOfflineQueue: true })
    this.#subscriber = subscriber
    const deaf = (): void => {
      // Messages may have been missed while not subscribed: everything cached is suspect.
      this.#hearing = false
      this.#emit('*')
    }
    subscriber.on('error', () => {})
    subscriber.on('close', deaf)
    subscriber.on('ready', () => {
      subscriber.subscribe(channel).then(() => { this.#hearing = true }, deaf)
    })
    subscriber.on('message', (_channel: string, message: string) => this.#emit(message))
  }

  #emit (key: string): void {
    for (const listener of this.#listeners) listener(key)
  }

  async close (): Promise<void> {
    this.#hearing = false
    await Promise.allSettled([this.#client.quit(), this.#subscriber?.quit()])
    this.#client.disconnect()
    this.#subscriber?.disconnect()
  }
}
