import { mkdirSync } from 'node:fs'
import { open, type RootDatabase } from 'lmdb'
import type { IdentityStore } from './store.js'
import type { Identity, TokenRecord, UserRecord } from './records.js'

// The single-replica store: an LMDB file that the gateway and the CLI open at the same time.
// Every read sees the latest committed write of any process, so nothing is cached in memory and
// a revocation by the CLI applies to the very next request.

const MAX_REMEMBERED = 100_000

export class EmbeddedIdentityStore implements IdentityStore {
  readonly kind = 'embedded' as const
  readonly hearing = false
  readonly #db: RootDatabase<TokenRecord | UserRecord | string, string>
  readonly #remembered = new Map<string, { value: string, until: number }>()

  constructor (path: string) {
    mkdirSync(path, { recursive: true, mode: 0o700 })
    this.#db = open({ path, encoding: 'json', compression: false })
  }

  async lookup (digest: string): Promise<Identity | null> {
    const token = this.#db.get(`token:${digest}`) as TokenRecord | undefined
    if (!token) return null
    return { token, user: await this.getUser(token.user) }
  }

  async createToken (record: TokenRecord): Promise<boolean> {
    return await this.#db.transaction(() => {
      if (this.#db.doesExist(`token:${record.digest}`)) return false
      this.#db.put(`token:${record.digest}`, record)
      this.#db.put(`token-id:${record.id}`, record.digest)
      return true
    })
  }

  async listTokens (): Promise<TokenRecord[]> {
    const out: TokenRecord[] = []
    for (const { value } of this.#db.getRange({ start: 'token:', end: 'token;' })) out.push(value as TokenRecord)
    return out
  }

  async revokeToken (id: string, at: number): Promise<TokenRecord | null> {
    return await this.#db.transaction(() => {
      const digest = this.#db.get(`token-id:${id}`) as string | undefined
      const record = digest === undefined ? undefined : this.#db.get(`token:${digest}`) as TokenRecord | undefined
      if (!record) return null
      const revoked = { ...record, revokedAt: record.revokedAt ?? at }
      this.#db.put(`token:${record.digest}`, revoked)
      return revoked
    })
  }

  async getUser (user: string): Promise<UserRecord | null> {
    return (this.#db.get(`user:${user}`) as UserRecord | undefined) ?? null
  }

  async putUser (record: UserRecord): Promise<void> {
    await this.#db.put(`user:${record.user}`, record)
  }

  async listUsers (): Promise<UserRecord[]> {
    const out: UserRecord[] = []
    for (const { value } of this.#db.getRange({ start: 'user:', end: 'user;' })) out.push(value as UserRecord)
    return out
  }

  // Answers remembered from Label Studio are kept in memory: one replica, nothing worth keeping
  // across restarts.
  async recall (key: string): Promise<string | null> {
    const hit = this.#remembered.get(key)
    if (hit === undefined || hit.until <= Date.now()) return null
    return hit.value
  }

  async remember (key: string, value: string, ttlMs: number): Promise<void> {
    this.#remembered.delete(key)
    if (this.#remembered.size >= MAX_REMEMBERED) {
      const oldest = this.#remembered.keys().next().value
      if (oldest !== undefined) this.#remembered.delete(oldest)
    }
    this.#remembered.set(key, { value, until: Date.now() + ttlMs })
  }

  async ping (): Promise<void> {
    this.#db.getStats()
  }

  async ready (): Promise<void> {}

  onInvalidate (): void {}

  async close (): Promise<void> {
    await this.#db.close()
  }
}
