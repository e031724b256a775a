import type { FastifyRequest } from 'fastify'
import * as errors from '../errors.js'
import { withDetail } from '../errors.js'
import { describePlacement, narrowedQuery, planScope } from '../policy/scope.js'
import type { CompiledRule } from '../policy/compile.js'
import type { ProjectResolver } from './resolve.js'

// The project checks of one request, run after its body has been read and checked and before
// anything is forwarded. Every id the request carries must lead to a project of the caller's binding.

/** Ids placed at once; lookups beyond this wait their turn, so a bulk body cannot flood Label Studio. */
const CONCURRENCY = 8

/** The most placements one access line lists; the rest are counted. */
const LOGGED = 20

/** The answer to an id outside the caller's projects, as the rule (or its role) says. */
export function outsideError (rule: CompiledRule): Error {
  if (rule.otherProjects === 'not-found') return new errors.LG_ERR_PROJECT_NOT_FOUND()
  return new errors.LG_ERR_PROJECT_FORBIDDEN()
}

export async function enforceProjects (
  request: FastifyRequest, rule: CompiledRule, body: unknown, resolver: ProjectResolver
): Promise<void> {
  const gate = request.gate
  const principal = gate.principal
  const plan = planScope(rule, gate.decision?.route ?? null, gate.decision?.params ?? {}, gate.target?.query ?? '',
    body, principal?.projects ?? [])
  if (!plan.scoped) return
  if ('error' in plan) {
    if (plan.error === 'outside') throw withDetail(outsideError(rule), `project-outside: ${plan.message}`)
    throw withDetail(new errors[plan.error](plan.message), 'project-source')
  }
  const checks: NonNullable<typeof gate.project>['checks'] = []
  gate.project = { checks, more: Math.max(0, plan.refs.length - LOGGED), list: plan.list !== null }
  let outside: string | null = null
  for (let i = 0; i < plan.refs.length && outside === null; i += CONCURRENCY) {
    const batch = plan.refs.slice(i, i + CONCURRENCY)
    const caller = { authorization: principal?.upstreamAuthorization ?? null, cookie: gate.upstreamCookie }
    const placed = await Promise.all(batch.map(async (ref) =>
      ({ ref, placement: await resolver.place(ref.kind, ref.id, caller, request.id) })))
    for (const { ref, placement } of placed) {
      if (checks.length < LOGGED) {
        checks.push({ via: ref.via, kind: ref.kind, id: ref.id, project: placement.project, how: placement.how })
      }
      if (outside === null && (placement.project === null || !plan.projects.has(placement.project))) {
        outside = describePlacement({ ...ref, project: placement.project })
      }
    }
  }
  if (outside !== null) throw withDetail(outsideError(rule), `project-outside: ${outside}`)
  if (plan.list !== null) {
    gate.projectList = { spec: plan.list, projects: plan.projects }
    gate.upstreamQuery = narrowedQuery(gate.target?.query ?? '', plan.list, plan.projects)
  }
}
