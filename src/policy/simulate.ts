import { ACCEPTED_METHODS, checkTarget } from '../edge/canonical.js'
import { evaluate } from './evaluate.js'
import { refusedParams } from './query.js'
import { judgeContentType, judgeJson } from './body.js'
import { filterAndDrop } from './fields.js'
import { describePlacement, keepBoundItems, planScope, type ListSpec } from './scope.js'
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
  /** The caller's project binding; all projects when absent. */
  projects?: 'all' | readonly number[]
  /** The project of each object the request may name, as Label Studio would answer: {task: {87: 2}}. */
  objects?: Readonly<Record<string, Readonly<Record<string, number>> | undefined>>
}

/** One id of the request placed in its project; `how` is `given` (a project id) or `case` (the case's objects). */
export interface SimulatedPlacement { via: string, kind: string, id: number, project: number | null, how: string }

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
  /** The project checks made, in order. */
  placements: SimulatedPlacement[]
  /** A list whose items are kept only for these projects. */
  list: { spec: ListSpec, projects: ReadonlySet<number> } | null
}

function deny (
  code: string, message: string | null,
  rule: CompiledRule | null = null, route: string | null = null, refused: string[] = []
): Simulation {
  return { allowed: false, code, message, rule, route, refused, forwarded: undefined, placements: [], list: null }
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
    allowed: true,
    code: null,
    message: null,
    rule,
    route: decision.route,
    refused: [],
    forwarded: request.body,
    placements: [],
    list: null
  }
  let checked: Simulation = allowed
  if (rule.request !== null && request.body !== undefined) {
    const handling = judgeContentType(rule.request, request.headers?.['content-type'] ?? 'application/json')
    if (handling !== 'json' && handling !== 'stream') return deny(handling.code, handling.message, rule, decision.route)
    if (handling === 'json') {
      const judged = judgeJson(rule.request, request.body)
      if (!('value' in judged)) return deny(judged.code, judged.message, rule, decision.route, judged.refused ?? [])
      checked = { ...allowed, forwarded: judged.value }
    }
  }
  return simulateScope(checked, target.target.query, decision.params, request)
}

/** The project checks, with the case's objects standing in for Label Studio's answers. */
function simulateScope (
  sim: Simulation, query: string, params: Record<string, string>, request: SimulatedRequest
): Simulation {
  const rule = sim.rule as CompiledRule
  const body = rule.request === null ? undefined : sim.forwarded
  const plan = planScope(rule, sim.route, params, query, body, request.projects ?? 'all')
  if (!plan.scoped) return sim
  const outsideCode = rule.otherProjects === 'not-found' ? 'LG_ERR_PROJECT_NOT_FOUND' : 'LG_ERR_PROJECT_FORBIDDEN'
  if ('error' in plan) {
    const code = plan.error === 'outside' ? outsideCode : plan.error
    return { ...deny(code, plan.message, rule, sim.route), placements: [] }
  }
  const placements = plan.refs.map((ref) => {
    const project = ref.kind === 'project' ? ref.id : request.objects?.[ref.kind]?.[String(ref.id)] ?? null
    return { via: ref.via, kind: ref.kind, id: ref.id, project, how: ref.kind === 'project' ? 'given' : 'case' }
  })
  const outside = placements.find((p) => p.project === null || !plan.projects.has(p.project))
  if (outside) {
    return { ...deny(outsideCode, describePlacement(outside), rule, sim.route), placements }
  }
  return { ...sim, placements, list: plan.list === null ? null : { spec: plan.list, projects: plan.projects } }
}

/**
 * What the client gets when Label Studio answers `body` to a request the rule allowed: a list
 * reduced to the caller's projects, then the rule's field list. An error when the gateway would refuse it.
 */
export function simulateResponse (
  rule: CompiledRule, body: unknown, dropFields: ReadonlySet<string>, list: Simulation['list'] = null
): unknown {
  const sent = responseForClient(rule, structuredClone(body), dropFields, list)
  return 'error' in sent ? { error: `LG_ERR_UPSTREAM_BAD_RESPONSE (${sent.error})` } : sent.body
}

/**
 * The body a client gets for a parsed upstream answer, as the gateway and `policy test` both
 * compute it: a list reduced to the caller's projects, then the rule's field list and the drop list.
 * Items of other projects go first, because the field list may not keep the project field. May
 * change `body` in place.
 */
export function responseForClient (
  rule: CompiledRule, body: unknown, dropFields: ReadonlySet<string>, list: Simulation['list']
): { body: unknown } | { error: string } {
  let kept = body
  if (list !== null) {
    const bound = keepBoundItems(kept, list.spec, list.projects)
    if ('error' in bound) return bound
    kept = bound.body
  }
  return { body: rule.response === null ? kept : filterAndDrop(kept, rule.response.fields, dropFields) }
}
