import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  LG_ERR_AUTH_INVALID, LG_ERR_AUTH_MISSING, LG_ERR_POLICY_DENIED, LG_ERR_POLICY_QUERY_DENIED, withDetail
} from '../errors.js'
import { refusedParams } from '../policy/query.js'
import { evaluate } from '../policy/evaluate.js'
import type { PolicySet } from '../policy/compile.js'
import type { Authenticator } from './authenticate.js'
import { readCredential } from './credentials.js'

export interface AccessOptions {
  authenticator: Authenticator
  policies: () => PolicySet
}

function header (request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * Authentication, then the role's policy, in one onRequest hook: no body is read and nothing is
 * forwarded before both have granted the request. Every refusal is a coded error; the precise
 * reason travels in `detail`, which only the access log shows.
 */
async function access (app: FastifyInstance, options: AccessOptions): Promise<void> {
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.internal === true) return
    const gate = request.gate
    const found = readCredential(header(request, 'authorization'), header(request, 'x-api-key'))
    if ('malformed' in found) throw withDetail(new LG_ERR_AUTH_INVALID(), found.malformed)
    const principal = await options.authenticator.authenticate(found.credential)
    gate.principal = principal
    const path = gate.target?.path ?? '/'
    const decision = evaluate(options.policies(), principal.role, request.method, path)
    gate.decision = decision
    if (decision.granted) {
      const refused = decision.rule?.query ? refusedParams(gate.target?.query ?? '', decision.rule.query) : []
      if (refused.length > 0) throw withDetail(new LG_ERR_POLICY_QUERY_DENIED(refused.join(', ')), 'query')
      return
    }
    if (found.credential === null) throw withDetail(new LG_ERR_AUTH_MISSING(), decision.reason ?? 'denied')
    throw withDetail(new LG_ERR_POLICY_DENIED(request.method, 'this path'), decision.reason ?? 'denied')
  })
}

export const accessPlugin = fp(access, { name: 'labelgate-access', fastify: '5.x', dependencies: ['labelgate-edge'] })
