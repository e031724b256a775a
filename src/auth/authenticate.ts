import { LG_ERR_AUTH_INVALID, LG_ERR_INTERNAL, LG_ERR_TOKEN_STORE_UNAVAILABLE, withDetail } from '../errors.js'
import { IdentityCache } from '../identity/cache.js'
import { digestToken, tokenProblem, type Identity } from '../identity/records.js'
import { unseal } from '../identity/seal.js'
import type { IdentityStore } from '../identity/store.js'
import { jwtExpiry, type Credential } from './credentials.js'
import type { SessionIntrospector } from './sessions.js'

/** Who is calling, as far as the policy and the proxy are concerned. */
export interface Principal {
  user: string | null
  role: string | null
  tokenId: string | null
  /** The projects of the user's binding; roles bound to projects reach only these. */
  projects: 'all' | readonly number[]
  /** The one `Authorization` value sent to Label Studio, or null to send none. */
  upstreamAuthorization: string | null
  /** The names a binding of this user may be stored under: what `user disable` must reach. */
  names: readonly string[]
  /** How the caller proved who they are: a gateway or Label Studio token, a session cookie, an access JWT. */
  via: 'token' | 'cookie' | 'jwt' | 'none'
}

export const ANONYMOUS: Principal = Object.freeze({
  user: null, role: 'anonymous', tokenId: null, projects: [], names: [], upstreamAuthorization: null, via: 'none'
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

  readonly #store: IdentityStore
  readonly #sessions: SessionIntrospector | null

  constructor (store: IdentityStore, options: AuthenticatorOptions, sessions: SessionIntrospector | null = null) {
    this.#cache = new IdentityCache(store, options.cacheTtlMs, options.cacheSize)
    this.#options = options
    this.#store = store
    this.#sessions = sessions
  }

  /** True when this credential's lookup would be answered from memory, without asking the store. */
  remembers (credential: Credential, now = Date.now()): boolean {
    return this.#cache.holds(digestToken(credential.value), now)
  }

  /** Resolves a credential to a principal; throws a coded error for every way that can fail. */
  async authenticate (credential: Credential | null, now = Date.now(), requestId = ''): Promise<Principal> {
    if (credential === null) return ANONYMOUS
    if (credential.source === 'cookie' || credential.source === 'jwt') {
      return await this.#session(credential, now, requestId)
    }
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
      names: [identity.token.user],
      upstreamAuthorization: this.#upstreamAuthorization(identity, credential),
      via: 'token'
    }
  }

  /**
   * A browser session or an access JWT: Label Studio names the user, the user's binding gives the
   * role. A session Label Studio has ended is anonymous (browsers keep stale cookies); an access JWT
   * it refuses, or one past its expiry, is invalid.
   */
  async #session (credential: Credential, now: number, requestId: string): Promise<Principal> {
    const jwt = credential.source === 'jwt'
    const expiry = jwt ? jwtExpiry(credential.value) : null
    if (jwt && (expiry === null || expiry * 1000 <= now)) throw withDetail(new LG_ERR_AUTH_INVALID(), 'expired-jwt')
    if (this.#sessions === null) throw withDetail(new LG_ERR_AUTH_INVALID(), 'sessions-off')
    const ttl = expiry === null ? Infinity : expiry * 1000 - now
    const user = await this.#sessions.userOf(credential, requestId, ttl)
    if (user === null) {
      if (jwt) throw withDetail(new LG_ERR_AUTH_INVALID(), 'jwt-refused-upstream')
      return { ...ANONYMOUS, via: 'none' }
    }
    let binding
    try {
      binding = await this.#store.getUser(user.email) ?? await this.#store.getUser(String(user.id))
    } catch (err) {
      throw withDetail(new LG_ERR_TOKEN_STORE_UNAVAILABLE({ cause: err }), 'store-error')
    }
    if (binding?.disabled === true) throw withDetail(new LG_ERR_AUTH_INVALID(), 'disabled-user')
    return {
      user: user.email,
      role: binding?.role ?? this.#options.defaultRole,
      tokenId: null,
      projects: binding?.projects ?? [],
      // Bindings are looked up by e-mail, then by Label Studio id.
      names: [user.email, String(user.id)],
      upstreamAuthorization: jwt ? `Bearer ${credential.value}` : null,
      via: jwt ? 'jwt' : 'cookie'
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
