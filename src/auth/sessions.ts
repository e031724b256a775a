import { request as undiciRequest, type Dispatcher } from 'undici'
import { storeCall, type IdentityStore } from '../identity/store.js'
import { digestToken } from '../identity/records.js'
import { LG_ERR_UPSTREAM_LOOKUP_FAILED, withDetail } from '../errors.js'
import { mapUpstreamError } from '../proxy/upstream-errors.js'
import { discard, readLimited } from '../proxy/bodies.js'
import type { Credential } from './credentials.js'

// Who is behind a browser session or a Label Studio access JWT: Label Studio says, answering
// GET /api/current-user/whoami with that credential. The answer is remembered in the identity
// store under the credential's SHA-256 digest (never the credential itself) for a short time.

export interface SessionUser { email: string, id: number }

export interface IntrospectorOptions {
  upstreamUrl: string
  dispatcher: Dispatcher
  store: IdentityStore
  ttlMs: number
  cookieName: string
}

/** Whoami answers are small; anything larger is not one. */
const MAX_WHOAMI_BYTES = 1_048_576

export class SessionIntrospector {
  readonly #options: IntrospectorOptions

  constructor (options: IntrospectorOptions) {
    this.#options = options
  }

  /** The user, or null when Label Studio does not know the credential (an ended session, a bad JWT). */
  async userOf (credential: Credential, requestId: string, ttlMs: number): Promise<SessionUser | null> {
    const key = `session:${digestToken(`${credential.source}:${credential.value}`)}`
    const store = this.#options.store
    const remembered = parseUser(await storeCall(() => store.recall(key), 'session-cache-error'))
    if (remembered !== null) return remembered
    const user = await this.#whoami(credential, requestId)
    const ttl = Math.min(ttlMs, this.#options.ttlMs)
    if (user !== null && ttl > 0) {
      await storeCall(() => store.remember(key, JSON.stringify(user), ttl), 'session-cache-error')
    }
    return user
  }

  async #whoami (credential: Credential, requestId: string): Promise<SessionUser | null> {
    const presented = credential.source === 'jwt'
      ? { authorization: `Bearer ${credential.value}` }
      : { cookie: `${this.#options.cookieName}=${credential.value}` }
    let response: Dispatcher.ResponseData
    try {
      response = await undiciRequest(new URL('/api/current-user/whoami', this.#options.upstreamUrl), {
        dispatcher: this.#options.dispatcher,
        method: 'GET',
        headers: {
          accept: 'application/json', 'x-request-id': requestId, 'x-labelgate-lookup': 'session', ...presented
        }
      })
    } catch (err) {
      throw mapUpstreamError(err)
    }
    if (response.statusCode === 401 || response.statusCode === 403) {
      discard(response.body)
      return null
    }
    const raw = response.statusCode === 200 ? await readLimited(response.body, MAX_WHOAMI_BYTES) : null
    if (response.statusCode !== 200) discard(response.body)
    const user = raw === null ? null : parseUser(raw.toString('utf8'))
    if (user === null) {
      throw withDetail(new LG_ERR_UPSTREAM_LOOKUP_FAILED(), `whoami-status-${response.statusCode}`)
    }
    return user
  }
}

function parseUser (text: string | null): SessionUser | null {
  if (text === null) return null
  try {
    const value = JSON.parse(text) as { email?: unknown, id?: unknown }
    if (typeof value.email !== 'string' || typeof value.id !== 'number' || !Number.isSafeInteger(value.id)) return null
    return { email: value.email, id: value.id }
  } catch {
    return null
  }
}
