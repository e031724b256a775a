import { ACCEPTED_METHODS, checkTarget } from '../edge/canonical.js'
import { evaluate } from './evaluate.js'
import { refusedParams } from './query.js'
import { judgeContentType, judgeJson } from './body.js'
import { filterAndDrop } from './fields.js'
import type { CompiledRule, PolicySet } from './compile.js'

// The gateway's decision for one request, computed without a network: what `policy test` and
// `policy explain` show. It runs the same pure steps as the gateway's hooks, in the same order.

export interface SimulatedRequest {
  role: string
  method: string
  /** Path with an optional query string, as a client would send it. */
  target: string
  headers?: Readonly<Record<string, string>>
  /** The body as text; JSON bodies default to Content-Type application/json. */
  body?: string
}

export interface Simulation {
  allowed: boolean
  code: string | null
  /** The detail of a refusal: the refused fields or parameters, or the canonical-form problem. */
  message: string | null
  rule: CompiledRule | null
  route: string | null
  refused: string[]
  /** The body the gateway forwards: its own serialisation of the checked value, or the text as sent. */
  forwarded: unknown
}

function deny (
  code: string, message: string | null,
  rule: CompiledRule | null = null, route: string | null = null, refused: string[] = []
): Simulation {
  return { allowed: false, code, message, rule, route, refused, forwarded: undefined }
}

export function simulateRequest (policies: PolicySet, request: SimulatedRequest): Simulation {
  if (!ACCEPTED_METHODS.has(request.method)) return deny('LG_ERR_REQUEST_BAD_METHOD', request.method)
  const target = checkTarget(request.target)
  if ('problem' in target) {
    const override = target.problem === 'a _method parameter'
    return deny(override ? 'LG_ERR_REQUEST_METHOD_OVERRIDE' : 'LG_ERR_REQUEST_NOT_CANONICAL', target.problem)
  }
  const decision = evaluate(policies, request.role, request.method, target.target.path)
  if (!decision.granted || decision.rule === null) {
    const code = request.role === 'anonymous' ? 'LG_ERR_AUTH_MISSING' : 'LG_ERR_POLICY_DENIED'
    return deny(code, decision.reason ?? null, null, decision.route)
  }
  const rule = decision.rule
  const params = rule.query ? refusedParams(target.target.query, rule.query) : []
  if (params.length > 0) return deny('LG_ERR_POLICY_QUERY_DENIED', params.join(', '), rule, decision.route, params)
  const allowed: Simulation = {
    allowed: true, code: null, message: null, rule, route: decision.route, refused: [], forwarded: request.body
  }
  if (rule.request === null || request.body === undefined) return allowed
  const handling = judgeContentType(rule.request, request.headers?.['content-type'] ?? 'application/json')
  if (handling === 'stream') return allowed
  if (handling !== 'json') return deny(handling.code, handling.message, rule, decision.route)
  const judged = judgeJson(rule.request, request.body)
  if ('value' in judged) return { ...allowed, forwarded: judged.value }
  return deny(judged.code, judged.message, rule, decision.route, judged.refused ?? [])
}

/** What the client gets when Label Studio answers `body` to a request the rule allowed. */
export function simulateResponse (rule: CompiledRule, body: unknown, dropFields: ReadonlySet<string>): unknown {
  return rule.response === null ? body : filterAndDrop(structuredClone(body), rule.response.fields, dropFields)
}
