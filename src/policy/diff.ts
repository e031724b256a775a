import type { CompiledRule, PolicySet } from './compile.js'
import { normalised, type PathTemplate } from './template.js'
import { PROJECT_KINDS } from './scope.js'

// What a change to the policy folder grants or takes away, role by role. Pure.

interface Grant {
  /** Fields the body may hold; null: any body. */
  request: readonly string[] | null
  /** Fields the client sees; null: everything. */
  response: readonly string[] | null
  /** Query parameters allowed, each with its spec; null: any. */
  query: readonly string[] | null
  /** What the body may be besides its fields: shape, media types, size; each one added widens. */
  bodyRules: readonly string[]
  /** Body fields whose values are checked: each one dropped widens. */
  values: readonly string[]
  /** Where the project is checked (and that one is required); null: the role is not bound to projects. */
  projects: readonly string[] | null
}

export interface RoleDiff {
  role: string
  lines: string[]
  widened: boolean
}

function grantsOf (rules: readonly CompiledRule[]): Map<string, Grant> {
  const grants = new Map<string, Grant>()
  for (const rule of rules) {
    for (const method of rule.methods) {
      // HEAD follows GET; listing it would double every read grant.
      if (method === 'HEAD' && rule.methods.has('GET')) continue
      for (const template of rule.templates) {
        grants.set(`${method} ${normalised(template.source)}`, {
          request: rule.request?.fieldList ?? null,
          response: rule.response?.fieldList ?? null,
          // A spec is part of the entry, so a loosened spec reads as one taken away and one added.
          query: rule.queryList ? Object.entries(rule.queryList).map(([k, v]) => `${k}=${JSON.stringify(v)}`) : null,
          bodyRules: rule.request
            ? [`body ${rule.request.body}`, ...[...rule.request.contentTypes].map((c) => `accepts ${c}`),
                `max_bytes ${rule.request.maxBytes ?? 'default'}`]
            : [],
          // The whole spec is part of the entry: a loosened one reads as a check taken away.
          values: rule.request?.values.map((v) => `${v.path}=${JSON.stringify(v.raw)}`) ?? [],
          projects: projectChecks(rule, template)
        })
      }
    }
  }
  return grants
}

/** The project checks of one template: each source, whether a project is required, how a list is kept. */
function projectChecks (rule: CompiledRule, template: PathTemplate): string[] | null {
  if (!rule.projectsBound) return null
  const scope = rule.project
  if (scope === null || scope.none) return []
  const params = template.segments.flatMap((s) =>
    s.kind === 'param' && (PROJECT_KINDS as readonly string[]).includes(s.name) ? [`path {${s.name}}`] : [])
  const list = scope.lists.get(normalised(template.source))
  return [
    ...params,
    ...scope.sources.map((s) => `${s.where} ${s.name} (${s.kind})`),
    list
      ? `list kept by ${list.items ?? ''}[].${list.fieldText}${list.narrow ? `, narrowed by ${list.narrow}` : ''}`
      : 'project required'
  ]
}

/** Compares one list of a grant; null stands for "anything", the widest list there is. */
type List = readonly string[] | null

function compareList (what: string, before: List, after: List): { text: string[], widened: boolean } {
  if (before === null && after === null) return { text: [], widened: false }
  if (before === null) return { text: [`${what}: now only ${after?.join(', ') || 'none'}`], widened: false }
  if (after === null) return { text: [`${what}: now any`], widened: true }
  const added = after.filter((f) => !before.includes(f))
  const removed = before.filter((f) => !after.includes(f))
  const text = [
    ...(added.length > 0 ? [`${what} + ${added.join(', ')}`] : []),
    ...(removed.length > 0 ? [`${what} - ${removed.join(', ')}`] : [])
  ]
  return { text, widened: added.length > 0 }
}

function diffRole (role: string, before: Map<string, Grant>, after: Map<string, Grant>): RoleDiff {
  const lines: string[] = []
  let widened = false
  for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const old = before.get(key)
    const now = after.get(key)
    if (!old) {
      lines.push(`+ ${key}`)
      widened = true
      continue
    }
    if (!now) {
      lines.push(`- ${key}`)
      continue
    }
    const lists = [
      ['request fields', old.request, now.request],
      ['response fields', old.response, now.response],
      ['query', old.query, now.query]
    ] as const
    for (const [what, a, b] of lists) {
      const change = compareList(what, a, b)
      widened ||= change.widened
      for (const text of change.text) lines.push(`~ ${key} ${text}`)
    }
    // Shape, media types and size are compared where both sides check bodies; any change there is
    // counted as widening, since a looser one is one taken away and another added.
    if (old.request !== null && now.request !== null) {
      const rules = compareList('request', old.bodyRules, now.bodyRules)
      widened ||= rules.widened
      for (const text of rules.text) lines.push(`~ ${key} ${text}`)
    }
    // For value checks the direction is reversed: a check taken away lets more through.
    const checks = compareList('value checks', old.values, now.values)
    widened ||= old.values.some((v) => !now.values.includes(v))
    for (const text of checks.text) lines.push(`~ ${key} ${text}`)
    // So it is for project checks; a role no longer bound to projects has none at all.
    if (old.projects !== null && old.projects.length > 0 && now.projects === null) {
      lines.push(`~ ${key} project checks: none (the role is no longer bound to projects)`)
      widened = true
    } else if (old.projects !== null && old.projects.length > 0 && now.projects !== null) {
      const scoped = compareList('project checks', old.projects, now.projects)
      widened ||= old.projects.some((v) => !(now.projects as readonly string[]).includes(v))
      for (const text of scoped.text) lines.push(`~ ${key} ${text}`)
    } else if (old.projects === null && now.projects !== null) {
      lines.push(`~ ${key} project checks: now ${now.projects.join(', ') || 'none'}`)
    }
  }
  return { role, lines, widened }
}

export function diffPolicies (before: PolicySet, after: PolicySet): RoleDiff[] {
  const roles = [...new Set([...before.roles.keys(), ...after.roles.keys()])].sort()
  return roles.map((role) => diffRole(role,
    grantsOf(before.roles.get(role)?.rules ?? []), grantsOf(after.roles.get(role)?.rules ?? [])))
}
