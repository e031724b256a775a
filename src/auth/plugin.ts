import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  LG_ERR_AUTH_INVALID, LG_ERR_AUTH_MISSING, LG_ERR_CSRF_ORIGIN_DENIED, LG_ERR_POLICY_DENIED,
  LG_ERR_POLICY_QUERY_DENIED, LG_ERR_REQUEST_BAD_HEADER, withDetail
} from '../errors.js'
import { refusedParams } from '../policy/query.js'
import { evaluate } from '../policy/evaluate.js'
import type { PolicySet } from '../policy/compile.js'
import type { GatewayConfig } from '../config/types.js'
import type { CredentialState, RequestLimits } from '../limits/limits.js'
import type { Authenticator, Principal } from './authenticate.js'
import { readCookies, readCredential, type CredentialResult } from './credentials.js'
import { acceptedOrigins, isUnsafe, statedOrigin } from './csrf.js'

export interface AccessOptions {
  authenticator: Authenticator
  policies: () => PolicySet
  sessions: GatewayConfig['sessions']
  publicOrigin: string | null
  limits: RequestLimits
}

function header (request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** The cookies that go upstream: the session and CSRF cookies of a browser session, the CSRF cookie alone otherwise. */
function upstreamCookie (
  principal: Principal, cookies: ReadonlyMap<string, string>, sessions: AccessOptions['sessions']
): string | null {
  if (principal.via === 'token' || principal.via === 'jwt') return null
  const names = principal.via === 'cookie' ? [sessions.cookieName, sessions.csrfCookieName] : [sessions.csrfCookieName]
  const pairs = names.flatMap((name) => cookies.has(name) ? [`${name}=${cookies.get(name) ?? ''}`] : [])
  return pairs.length === 0 ? null : pairs.join('; ')
}

/**
 * Rate limits, authentication, then the role's policy, in one onRequest hook: no body is read and
 * nothing is forwarded before all have granted the request. Every refusal is a coded error; the
 * precise reason travels in `detail`, which only the access log shows.
 */
async function access (app: FastifyInstance, options: AccessOptions): Promise<void> {
  const { sessions, limits } = options
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.internal === true) return
    const gate = request.gate
    const cookies = readCookies(request.headers.cookie)
    if ('malformed' in cookies) {
      throw withDetail(new LG_ERR_REQUEST_BAD_HEADER('a cookie is sent twice'), cookies.malformed)
    }
    const found = readCredential(header(request, 'authorization'), header(request, 'x-api-key'), cookies,
      { session: sessions.cookieName, csrf: sessions.csrfCookieName })
    await limits.beforeAuthentication(request, reply, credentialState(options.authenticator, found))
    const principal = await authenticate(options.authenticator, found, request.id, async () => {
      await limits.afterFailure(request, reply)
    })
    gate.principal = principal
    // A session Label Studio has ended leaves a visitor: counted by address, like a failed credential.
    if (principal.via === 'none' && !('malformed' in found) && found.credential !== null) {
      await limits.afterFailure(request, reply)
    }
    if (principal.via !== 'none') await limits.afterAuthentication(request, reply)
    gate.upstreamCookie = upstreamCookie(principal, cookies, sessions)
    if (isUnsafe(request.method) && gate.upstreamCookie !== null) {
      // Cookies are ambient: another site can make a browser send them. Only our origins may write.
      const stated = statedOrigin(header(request, 'origin'), header(request, 'referer'))
      const accepted = acceptedOrigins(options.publicOrigin, header(request, 'host'), sessions.trustedOrigins)
      if (stated === null || !accepted.includes(stated.toLowerCase())) {
        throw withDetail(new LG_ERR_CSRF_ORIGIN_DENIED(), `origin: ${stated ?? 'none'}`)
      }
      gate.originChecked = true
    }
    const path = gate.target?.path ?? '/'
    const decision = evaluate(options.policies(), principal.role, request.method, path)
    gate.decision = decision
    if (decision.granted) {
      const refused = decision.rule?.query ? refusedParams(gate.target?.query ?? '', decision.rule.query) : []
      if (refused.length > 0) throw withDetail(new LG_ERR_POLICY_QUERY_DENIED(refused.join(', ')), 'query')
      return
    }
    if (principal.via === 'none') throw withDetail(new LG_ERR_AUTH_MISSING(), decision.reason ?? 'denied')
    throw withDetail(new LG_ERR_POLICY_DENIED(request.method, 'this path'), decision.reason ?? 'denied')
  })
}

function credentialState (authenticator: Authenticator, found: CredentialResult): CredentialState {
  if ('malformed' in found) return 'unknown'
  if (found.credential === null) return 'none'
  return authenticator.remembers(found.credential) ? 'remembered' : 'unknown'
}

/** The caller's principal; `failed` runs before a credential that is not valid is refused. */
async function authenticate (
  authenticator: Authenticator, found: CredentialResult, requestId: string, failed: () => Promise<void>
): Promise<Principal> {
  try {
    if ('malformed' in found) throw withDetail(new LG_ERR_AUTH_INVALID(), found.malformed)
    return await authenticator.authenticate(found.credential, Date.now(), requestId)
  } catch (err) {
    // A store that does not answer says nothing about the credential, so only refusals count.
    if ((err as { code?: string }).code === 'LG_ERR_AUTH_INVALID') await failed()
    throw err
  }
}

export const accessPlugin = fp(access, { name: 'labelgate-access', fastify: '5.x', dependencies: ['labelgate-edge'] })
