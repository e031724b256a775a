import { LG_ERR_TOKEN_STORE_UNAVAILABLE, withDetail } from '../errors.js'
import type { Identity, TokenRecord, UserRecord } from './records.js'

/**
 * Where tokens and user bindings live. Two real backends implement it: Redis, shared by every
 * replica, and an embedded database file for a single replica. Any failure to reach the store
 * rejects the promise; callers turn that into 503, never into a pass.
 */
export interface IdentityStore {
  readonly kind: 'redis' | 'embedded'
  /** The token with this digest and its user's binding, in as few round trips as the backend allows. */
  lookup (digest: string): Promise<Identity | null>
  /**
   * Stores a new token. Returns false, changing nothing, when a token with the same digest exists:
   * a token is never silently moved to another user or record.
   */
  createToken (record: TokenRecord): Promise<boolean>
  listTokens (): Promise<TokenRecord[]>
  /** Marks a token revoked and tells every replica; returns null when the id is unknown. */
  revokeToken (id: string, at: number): Promise<TokenRecord | null>
  getUser (user: string): Promise<UserRecord | null>
  putUser (record: UserRecord): Promise<void>
  listUsers (): Promise<UserRecord[]>
  /**
   * A value remembered from an earlier answer of Label Studio: the project of an object
   * (`object:task:87`) or the user behind a session (`session:<sha256>`); null when not known.
   */
  recall (key: string): Promise<string | null>
  /** Remembers a value for `ttlMs`, for every replica that shares the store. */
  remember (key: string, value: string, ttlMs: number): Promise<void>
  ping (): Promise<void>
  /** Resolves once the store can take commands; rejects if it cannot within its connect timeout. */
  ready (): Promise<void>
  /** Calls `listener` with `token:<digest>` or `user:<name>` when a record changes anywhere. */
  onInvalidate (listener: (key: string) => void): void
  /** True while changes made elsewhere are being heard; a cache must not be used otherwise. */
  readonly hearing: boolean
  close (): Promise<void>
}

/** Runs a store operation; a failure becomes 503, never a pass. `detail` names it in the log. */
export async function storeCall<T> (operation: () => Promise<T>, detail: string): Promise<T> {
  try {
    return await operation()
  } catch (err) {
    throw withDetail(new LG_ERR_TOKEN_STORE_UNAVAILABLE({ cause: err }), detail)
  }
}
