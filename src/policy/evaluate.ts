import { matchTemplate, splitPath, compareSpecificity, type PathTemplate } from './template.js'
import type { CompiledRule, PolicySet } from './compile.js'
import type { PolicyMethod } from './schema.js'

// Pure policy evaluation: no Fastify, no I/O. A role allows nothing but what one of its rules allows.

export type DenyReason = 'no-role' | 'unknown-role' | 'no-rule' | 'method-not-allowed'

export interface Decision {
  granted: boolean
  /** Why a request was denied; absent when it was granted. */
  reason?: DenyReason
  rule: CompiledRule | null
  /** The template that matched the path, for logs: never the raw path. */
  route: string | null
  params: Record<string, string>
}

interface Match { rule: CompiledRule, template: PathTemplate, params: Record<string, string> }

function bestMatch (matches: Match[]): Match | null {
  return matches.sort((a, b) => compareSpecificity(a.template, b.template))[0] ?? null
}

/** Decides whether `role` may send `method` to the canonical `path` (no query string). */
export function evaluate (policies: PolicySet, role: string | null, method: string, path: string): Decision {
  if (role === null) return { granted: false, reason: 'no-role', rule: null, route: null, params: {} }
  const compiled = policies.roles.get(role)
  if (!compiled) return { granted: false, reason: 'unknown-role', rule: null, route: null, params: {} }
  const segments = splitPath(path)
  const matches: Match[] = []
  for (const rule of compiled.rules) {
    for (const template of rule.templates) {
      const params = matchTemplate(template, segments)
      if (params) matches.push({ rule, template, params })
    }
  }
  const allowed = bestMatch(matches.filter((m) => m.rule.methods.has(method as PolicyMethod)))
  if (allowed) return { granted: true, rule: allowed.rule, route: allowed.template.source, params: allowed.params }
  const any = bestMatch(matches)
  if (any) {
    return { granted: false, reason: 'method-not-allowed', rule: null, route: any.template.source, params: any.params }
  }
  return { granted: false, reason: 'no-rule', rule: null, route: null, params: {} }
}
