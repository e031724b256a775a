import { LG_ERR_AUTH_INVALID, LG_ERR_INTERNAL, LG_ERR_TOKEN_STORE_UNAVAILABLE, withDetail } from '../errors.js'
import { IdentityCache } from '../identity/cache.js'
import { digestToken, tokenProblem, type Identity } from '../identity/records.js'
import { unseal } from '../identity/seal.js'
import type { IdentityStore } from '../identity/store.js'
import type { Credential } from './credentials.js'

/** Who is calling, as far as the policy and the proxy are concerned. */
export interface Principal {
  user: string | null
  role: string | null
  tokenId: string | null
  /** The projects of the user's binding; roles bound to projects reach only these. */
  projects: 'all' | readonly number[]
  /** The one `Authorization` value sent to Label Studio, or null to send none. */
  upstreamAuthorization: string | null
}

export const ANONYMOUS: Principal = Object.freeze({
  user: null, role: 'anonymous', tokenId: null, projects: [], upstreamAuthorization: null
})

export interface AuthenticatorOptions {
  cacheTtlMs: number
  cacheSize: number
  encryptionKey: Buffer | null
  defaultRole: string | null
}

export class Authenticator {
  readonly #cache: IdentityCache
  readonly #options: AuthenticatorOptions

  constructor (store: IdentityStore, options: AuthenticatorOptions) {
    this.#cache = new IdentityCache(store, options.cacheTtlMs, options.cacheSize)
    this.#options = options
  }

  /** True when this credential's lookup would be answered from memory, without asking the store. */
  remembers (credential: Credential, now = Date.now()): boolean {
    return this.#cache.holds(digestToken(credential.value), now)
  }

  /** Resolves a credential to a principal; throws a coded error for every way that can fail. */
  async authenticate (credential: Credential | null, now = Date.now()): Promise<Principal> {
    if (credential === null) return ANONYMOUS
    let identity: Identity | null
    try {
      // Looked up by digest only: the token itself is never compared or stored.
      identity = await this.#cache.lookup(digestToken(credential.value), now)
    } catch (err) {
      throw withDetail(new LG_ERR_TOKEN_STORE_UNAVAILABLE({ cause: err }), 'store-error')
    }
    const problem = tokenProblem(identity, now)
    if (problem !== null || identity === null) throw withDetail(new LG_ERR_AUTH_INVALID(), problem ?? 'unknown-token')
    return {
      user: identity.token.user,
      role: identity.user?.role ?? this.#options.defaultRole,
      tokenId: identity.token.id,
      // A token whose user has no binding (default_role) is bound to no project.
      projects: identity.user?.projects ?? [],
      upstreamAuthorization: this.#upstreamAuthorization(identity, credential)
    }
  }

  #upstreamAuthorization (identity: Identity, credential: Credential): string | null {
    const token = identity.token
    if (token.kind === 'registered') return `Token ${credential.value}`
    if (token.upstream === null) return null
    const key = this.#options.encryptionKey
    if (key === null) throw withDetail(new LG_ERR_INTERNAL(), 'no-encryption-key-for-upstream-token')
    try {
      return `Token ${unseal(key, token.upstream, token.id)}`
    } catch (err) {
      throw withDetail(new LG_ERR_INTERNAL({ cause: err }), 'upstream-token-does-not-open')
    }
  }
}
