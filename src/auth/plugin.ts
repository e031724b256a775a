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
import type { Authenticator, Principal } from './authenticate.js'
import { readCookies, readCredential } from './credentials.js'
import { acceptedOrigins, isUnsafe, statedOrigin } from './csrf.js'

export interface AccessOptions {
  authenticator: Authenticator
  policies: () => PolicySet
  sessions: GatewayConfig['sessions']
  publicOrigin: string | null
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
 * Authentication, then the role's policy, in one onRequest hook: no body is read and nothing is
 * forwarded before both have granted the request. Every refusal is a coded error; the precise
 * reason travels in `detail`, which only the access log shows.
 */
async function access (app: FastifyInstance, options: AccessOptions): Promise<void> {
  const { sessions } = options
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.internal === true) return
    const gate = request.gate
    const cookies = readCookies(request.headers.cookie)
    if ('malformed' in cookies) {
      throw withDetail(new LG_ERR_REQUEST_BAD_HEADER('a cookie is sent twice'), cookies.malformed)
    }
    const found = readCredential(header(request, 'authorization'), header(request, 'x-api-key'), cookies,
      { session: sessions.cookieName, csrf: sessions.csrfCookieName })
    if ('malformed' in found) throw withDetail(new LG_ERR_AUTH_INVALID(), found.malformed)
    const principal = await options.authenticator.authenticate(found.credential, Date.now(), request.id)
    gate.principal = principal
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

export const accessPlugin = fp(access, { name: 'labelgate-access', fastify: '5.x', dependencies: ['labelgate-edge'] })
