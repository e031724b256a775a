import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  LG_ERR_AUTH_INVALID, LG_ERR_AUTH_MISSING, LG_ERR_POLICY_DENIED, LG_ERR_POLICY_QUERY_DENIED, withDetail
} from '../errors.js'
import { refusedParams } from '../policy/query.js'
import { evaluate } from '../policy/evaluate.js'
import type { PolicySet } from '../policy/compile.js'
import type { CredentialState, RequestLimits } from '../limits/limits.js'
import type { Authenticator, Principal } from './authenticate.js'
import { readCredential, type CredentialResult } from './credentials.js'

export interface AccessOptions {
  authenticator: Authenticator
  policies: () => PolicySet
  limits: RequestLimits
}

function header (request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * Rate limits, authentication, then the role's policy, in one onRequest hook: no body is read and
 * nothing is forwarded before all have granted the request. Every refusal is a coded error; the
 * precise reason travels in `detail`, which only the access log shows.
 */
async function access (app: FastifyInstance, options: AccessOptions): Promise<void> {
  const { limits } = options
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.internal === true) return
    const gate = request.gate
    const found = readCredential(header(request, 'authorization'), header(request, 'x-api-key'))
    const hasCredential = 'malformed' in found || found.credential !== null
    await limits.beforeAuthentication(request, reply, credentialState(options.authenticator, found))
    const principal = await authenticate(options.authenticator, found, async () => {
      await limits.afterFailure(request, reply)
    })
    gate.principal = principal
    if (hasCredential) await limits.afterAuthentication(request, reply)
    const path = gate.target?.path ?? '/'
    const decision = evaluate(options.policies(), principal.role, request.method, path)
    gate.decision = decision
    if (decision.granted) {
      const refused = decision.rule?.query ? refusedParams(gate.target?.query ?? '', decision.rule.query) : []
      if (refused.length > 0) throw withDetail(new LG_ERR_POLICY_QUERY_DENIED(refused.join(', ')), 'query')
      return
    }
    if (!hasCredential) throw withDetail(new LG_ERR_AUTH_MISSING(), decision.reason ?? 'denied')
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
  authenticator: Authenticator, found: CredentialResult, failed: () => Promise<void>
): Promise<Principal> {
  try {
    if ('malformed' in found) throw withDetail(new LG_ERR_AUTH_INVALID(), found.malformed)
    return await authenticator.authenticate(found.credential)
  } catch (err) {
    // A store that does not answer says nothing about the credential, so only refusals count.
    if ((err as { code?: string }).code === 'LG_ERR_AUTH_INVALID') await failed()
    throw err
  }
}

export const accessPlugin = fp(access, { name: 'labelgate-access', fastify: '5.x', dependencies: ['labelgate-edge'] })
