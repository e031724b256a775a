import { problemAt, type PathSegment, type Problem, type YamlSource } from '../config/source-map.js'
import { parseFieldPath, valuesAt, type FieldSegment } from './fields.js'
import { normalised, type PathTemplate } from './template.js'
import type { RawProjectSpec, RawRule } from './schema.js'

// Project scoping, the pure part: where a request's project ids are, which of them a rule must
// check, and which list items a binding keeps. No I/O: resolving an object id to its project is
// the gateway's (src/scope/) or, in `policy test`, the case file's.

/** Objects that belong to one project. A path parameter named after one of them is a project source. */
export const PROJECT_KINDS = [
  'project', 'task', 'annotation', 'prediction', 'draft', 'view', 'comment', 'review', 'ml_backend'
] as const
export type ProjectKind = typeof PROJECT_KINDS[number]

/** Objects of the organisation rather than of a project: their ids need no project check. */
export const ORGANISATION_KINDS = ['user'] as const

const isProjectKind = (name: string): name is ProjectKind => (PROJECT_KINDS as readonly string[]).includes(name)
const isOrganisationKind = (name: string): boolean => (ORGANISATION_KINDS as readonly string[]).includes(name)

/**
 * A name that reads as an object id or a list of them: `id`, `ids`, `pk`, or ending in one of
 * those or in a kind's name, singular or plural, in snake_case or camelCase (`task_id`, `taskID`,
 * `projectId`, `projects`, `parent_annotation`).
 */
export function looksLikeId (name: string): boolean {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().split(/[_\-.]+/).filter((w) => w !== '')
  const last = words.at(-1) ?? ''
  const singular = last.endsWith('s') ? last.slice(0, -1) : last
  if (['id', 'pk', 'ids', 'pks'].includes(last)) return true
  if (isProjectKind(last) || isProjectKind(singular)) return true
  // Multi-word kinds: ml_backend, ml_backends.
  const tail = words.slice(-2).join('_')
  return isProjectKind(tail) || isProjectKind(tail.replace(/s$/, ''))
}

export interface ScopeSource {
  where: 'path' | 'query' | 'body'
  /** The path parameter, query parameter or body field path. */
  name: string
  segments: readonly FieldSegment[]
  kind: ProjectKind
}

export interface ListSpec {
  /** The top-level key of the item array; null when the body is the array. */
  items: string | null
  /** Where an item keeps its project id. */
  field: readonly FieldSegment[]
  fieldText: string
  /** A query parameter that narrows the list to given project ids, added when the client sends none. */
  narrow: string | null
}

export interface CompiledScope {
  /** Query and body sources; path sources come from the matched template's parameter names. */
  sources: readonly ScopeSource[]
  /** List templates (normalised) that may be sent without a project: their items are filtered instead. */
  lists: ReadonlyMap<string, ListSpec>
  /** Names that look like ids but are not objects of a project (a UUID, an external key). */
  notIds: readonly string[]
  /** True when no template, query or body carries a project: the rule reaches no project's data. */
  none: boolean
}

interface ScopeContext {
  source: YamlSource
  at: (...p: PathSegment[]) => PathSegment[]
  problems: Problem[]
  bound: boolean
}

/** Compiles a rule's `project:` key. In a role bound to projects, every id the rule lets in must have a source. */
export function compileScope (
  ctx: ScopeContext, rule: RawRule, templates: readonly PathTemplate[]
): CompiledScope | null {
  const raw = rule.project
  if (raw === undefined) {
    if (ctx.bound) {
      ctx.problems.push(problemAt(ctx.source, ctx.at('id'), `rule "${rule.id}" is in a role bound to projects: ` +
        'say where its project comes from (project: {...}) or that it reaches none (project: none)'))
      checkPathParams(ctx, rule, templates, false)
    }
    return null
  }
  const spec: RawProjectSpec = typeof raw === 'string' ? {} : raw
  const none = raw === 'none' || spec.none === true
  const writes = rule.methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH')
  const unread = rule.request === undefined || rule.request.body === 'any' ||
    (rule.request.content_types ?? ['json']).some((t) => t !== 'json')
  if (ctx.bound && writes && unread) {
    ctx.problems.push(problemAt(ctx.source, ctx.at('methods'), `rule "${rule.id}" takes a body: give it JSON-only ` +
      'request fields (body object or array), so that the ids in it are read and checked rather than forwarded unread'))
  }
  if (ctx.bound && !none && rule.query === undefined) {
    ctx.problems.push(problemAt(ctx.source, ctx.at('id'), `rule "${rule.id}" carries project ids: give it a query ` +
      'list (query: {} for none), so that an id in an unlisted query parameter cannot pass unchecked'))
  }
  const notIds = spec.not_ids ?? []
  const sources: ScopeSource[] = []
  const declared = (where: 'query' | 'body', entries: Record<string, string> | undefined): void => {
    for (const [name, kind] of Object.entries(entries ?? {})) {
      const segments = parseFieldPath(name)
      const place = ctx.at('project', where, name)
      if ('error' in segments) {
        ctx.problems.push(problemAt(ctx.source, place, `bad field path "${name}": ${segments.error}`))
      } else if (isProjectKind(kind)) sources.push({ where, name, segments, kind })
    }
  }
  declared('query', spec.query)
  declared('body', spec.body)
  checkQuerySources(ctx, rule, sources)
  checkBodySources(ctx, rule, sources)
  const pathKinds = checkPathParams(ctx, rule, templates, none, notIds)
  checkUndeclared(ctx, rule, sources, notIds)
  const lists = compileLists(ctx, rule, spec, templates)
  if (raw === 'path' && !pathKinds) {
    ctx.problems.push(problemAt(ctx.source, ctx.at('project'),
      `project: path, but no path parameter is named after a kind (${PROJECT_KINDS.join(', ')})`))
  }
  if (none && (sources.length > 0 || lists.size > 0)) {
    const message = 'a rule that reaches no project has no sources or lists'
    ctx.problems.push(problemAt(ctx.source, ctx.at('project'), message))
  }
  // An object that names no source is a mistake, not a way to say "none": that must be said outright.
  if (ctx.bound && typeof raw === 'object' && !none && sources.length === 0 && lists.size === 0 && !pathKinds) {
    ctx.problems.push(problemAt(ctx.source, ctx.at('project'), 'names no project source: give query, body, lists ' +
      'or a path parameter named after a kind, or say that the rule reaches no project (none: true)'))
  }
  return Object.freeze({
    sources: Object.freeze(sources),
    lists,
    notIds: Object.freeze([...notIds]),
    none: none || (sources.length === 0 && lists.size === 0 && !pathKinds)
  })
}

function checkQuerySources (ctx: ScopeContext, rule: RawRule, sources: readonly ScopeSource[]): void {
  for (const s of sources.filter((x) => x.where === 'query')) {
    if (rule.query?.[s.name] === undefined) {
      ctx.problems.push(problemAt(ctx.source, ctx.at('project', 'query', s.name),
        `query parameter "${s.name}" is not in the rule's query list, so no request can carry it`))
    }
  }
}

function checkBodySources (ctx: ScopeContext, rule: RawRule, sources: readonly ScopeSource[]): void {
  if (!sources.some((s) => s.where === 'body')) return
  const types = rule.request?.content_types ?? ['json']
  if (rule.request === undefined || types.some((t) => t !== 'json')) {
    ctx.problems.push(problemAt(ctx.source, ctx.at('project', 'body'), 'body sources need a request spec that ' +
      'takes JSON only: a form or multipart body is forwarded unread, so its ids could not be checked'))
  }
}

/** Path parameters: an id-like one must be named after its kind. Returns true when one is a project source. */
function checkPathParams (
  ctx: ScopeContext, rule: RawRule, templates: readonly PathTemplate[], none: boolean, notIds: readonly string[] = []
): boolean {
  let any = false
  for (const template of templates) {
    for (const seg of template.segments) {
      if (seg.kind !== 'param') continue
      const index = rule.paths.indexOf(template.source)
      const place = ctx.at('paths', index === -1 ? 0 : index)
      if (isProjectKind(seg.name)) {
        any = true
        if (!seg.int) ctx.problems.push(problemAt(ctx.source, place, `{${seg.name}} is an id: write {${seg.name}:int}`))
        if (none) {
          ctx.problems.push(problemAt(ctx.source, place,
            `project: none, but {${seg.name}:int} in ${template.source} is an object of a project`))
        }
      } else if (ctx.bound && !isOrganisationKind(seg.name) && !(notIds.includes(seg.name) && !seg.int)) {
        // Any other parameter could carry an id: it is one unless the rule says it is not.
        ctx.problems.push(problemAt(ctx.source, place, `{${seg.name}${seg.int ? ':int' : ''}} in ${template.source} ` +
          'names an object the gateway cannot place in a project: name the parameter after its kind ' +
          `(${PROJECT_KINDS.join(', ')}) or, for an organisation's object, ${ORGANISATION_KINDS.join(', ')}; ` +
          'a text parameter that is no id goes in project.not_ids'))
      }
    }
  }
  return any
}

/** In a bound role, query parameters and body fields that read as ids must be sources or declared not ids. */
function checkUndeclared (
  ctx: ScopeContext, rule: RawRule, sources: readonly ScopeSource[], notIds: readonly string[]
): void {
  if (!ctx.bound) return
  const known = new Set([...sources.map((s) => s.name), ...notIds])
  const hint = 'declare it under project.query or project.body with its kind, or under project.not_ids'
  for (const [name, spec] of Object.entries(rule.query ?? {})) {
    // A parameter limited to booleans, literals or filter JSON carries no id.
    const canHoldId = typeof spec === 'object' ? !Array.isArray(spec) : !['bool', 'dm-filters'].includes(spec)
    if (canHoldId && looksLikeId(name) && !known.has(name) && !isOrganisationKind(name)) {
      const message = `query parameter "${name}" reads as an id: ${hint}`
      ctx.problems.push(problemAt(ctx.source, ctx.at('query', name), message))
    }
  }
  // A body field whose own name or last segment reads as an id, unless a source covers it or lies beneath it.
  for (const [i, field] of (rule.request?.fields ?? []).entries()) {
    if (field.split('.').some((segment) => segment.replace('[]', '') === '*')) {
      const message = `body field "${field}" lets any key through, ids included: name the fields`
      ctx.problems.push(problemAt(ctx.source, ctx.at('request', 'fields', i), message))
      continue
    }
    const last = field.split('.').at(-1)?.replace('[]', '') ?? ''
    const covered = known.has(field) || [...known].some((k) => k.startsWith(`${field}.`) || k.startsWith(`${field}[]`))
    if ((looksLikeId(last) || looksLikeId(field)) && !covered && !isOrganisationKind(last)) {
      const message = `body field "${field}" reads as an id: ${hint}`
      ctx.problems.push(problemAt(ctx.source, ctx.at('request', 'fields', i), message))
    }
  }
}

function compileLists (
  ctx: ScopeContext, rule: RawRule, spec: RawProjectSpec, templates: readonly PathTemplate[]
): ReadonlyMap<string, ListSpec> {
  const lists = new Map<string, ListSpec>()
  const known = new Set(templates.map((t) => normalised(t.source)))
  for (const [template, list] of Object.entries(spec.lists ?? {})) {
    const place = ctx.at('project', 'lists', template)
    const field = parseFieldPath(list.field)
    if (!known.has(normalised(template))) {
      ctx.problems.push(problemAt(ctx.source, place, `${template} is not one of the rule's paths`))
    } else if ('error' in field) {
      ctx.problems.push(problemAt(ctx.source, place, `bad field path "${list.field}": ${field.error}`))
    } else if (list.narrow !== undefined && rule.query?.[list.narrow] === undefined) {
      ctx.problems.push(problemAt(ctx.source, place, `narrow: "${list.narrow}" is not in the rule's query list`))
    } else {
      lists.set(normalised(template), Object.freeze({
        items: list.items ?? null, field, fieldText: list.field, narrow: list.narrow ?? null
      }))
    }
  }
  return lists
}

/** One id a request carries, and where it was found. */
export interface ProjectRef {
  kind: ProjectKind
  id: number
  /** `path task`, `query project`, `body selectedItems.included[]`. */
  via: string
}

/** `task 87 (body selectedItems.included[]) is in project 2`, for logs and `policy explain`. */
export function describePlacement (p: { via: string, kind: string, id: number, project: number | null }): string {
  const where = p.project === null ? 'no project the caller can see' : `project ${p.project}`
  return `${p.kind} ${p.id} (${p.via}) is in ${where}`
}

/** More ids than this in one request are refused rather than looked up one by one. */
export const MAX_REFS = 500

function asId (value: unknown): number | null | 'bad' {
  if (value === null || value === undefined) return null
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : 'bad'
  if (typeof value === 'string' && /^[0-9]{1,15}$/.test(value)) return Number(value)
  return 'bad'
}

/**
 * Every project id and object id a request carries under this scope: path parameters named after
 * a kind, then the declared query parameters and body fields. A value that is not an id is an error.
 */
export function projectRefs (
  scope: CompiledScope, params: Readonly<Record<string, string>>, query: string, body: unknown
): { refs: ProjectRef[] } | { error: string } {
  const refs: ProjectRef[] = []
  const seen = new Set<string>()
  const add = (kind: ProjectKind, value: unknown, via: string): string | null => {
    const id = asId(value)
    if (id === 'bad') return `${via} is not an id`
    if (id === null || seen.has(`${kind}:${id}`)) return null
    seen.add(`${kind}:${id}`)
    refs.push({ kind, id, via })
    return null
  }
  for (const [name, value] of Object.entries(params)) {
    if (!isProjectKind(name)) continue
    const problem = add(name, value, `path ${name}`)
    if (problem) return { error: problem }
  }
  const search = new URLSearchParams(query)
  for (const source of scope.sources) {
    const values = source.where === 'query'
      ? search.getAll(source.name).flatMap((v) => v.split(','))
      : strictValuesAt(body, source.segments)
    if ('error' in values) return { error: `body ${source.name}: ${values.error}` }
    for (const value of values) {
      const problem = add(source.kind, value, `${source.where} ${source.name}`)
      if (problem) return { error: problem }
    }
  }
  if (refs.length > MAX_REFS) return { error: `more than ${MAX_REFS} ids in one request` }
  return { refs }
}

/**
 * The values at a body source, refusing anything in the way that Label Studio might read
 * differently: a text where an object or a list is expected (Label Studio parses JSON text in
 * fields such as selectedItems), or a scalar where a list is expected.
 */
function strictValuesAt (value: unknown, segments: readonly FieldSegment[]): unknown[] | { error: string } {
  if (segments.length === 0) return [value]
  if (value === undefined || value === null) return []
  if (Array.isArray(value)) return eachStrict(value, segments)
  if (typeof value !== 'object') return { error: `${JSON.stringify(value).slice(0, 40)} where an object is expected` }
  const [first, ...rest] = segments as [FieldSegment, ...FieldSegment[]]
  if (!Object.hasOwn(value, first.key)) return []
  const inner = (value as Record<string, unknown>)[first.key]
  if (!first.array || inner === null || inner === undefined) return strictValuesAt(inner, rest)
  if (!Array.isArray(inner)) return { error: `${first.key} is not a list` }
  return eachStrict(inner, rest)
}

/** strictValuesAt over the elements of a list; the first refusal wins. */
function eachStrict (elements: readonly unknown[], segments: readonly FieldSegment[]): unknown[] | { error: string } {
  const out: unknown[] = []
  for (const element of elements) {
    const found = strictValuesAt(element, segments)
    if ('error' in found) return found
    out.push(...found)
  }
  return out
}

/**
 * Keeps the items of a list whose project is bound. An error when the list is not in the expected
 * shape, or when items were removed from one page of several, whose counts could not be corrected.
 */
export function keepBoundItems (
  body: unknown, list: ListSpec, projects: ReadonlySet<number>
): { body: unknown, removed: number } | { error: string } {
  const container = list.items === null ? null : body
  const items = container === null ? body : (isObject(container) ? container[list.items as string] : undefined)
  if (!Array.isArray(items)) return { error: 'list-shape' }
  const kept = items.filter((item) => {
    const id = asId(valuesAt(item, list.field)[0])
    return typeof id === 'number' && projects.has(id)
  })
  const removed = items.length - kept.length
  if (container === null) return { body: kept, removed }
  const out = { ...(container as Record<string, unknown>), [list.items as string]: kept }
  if (removed > 0) {
    // Counts must match what is returned: only a list that is whole (one page) can be corrected.
    const partial = out.next != null || out.previous != null || Object.keys(out).some((k) => k.startsWith('total_'))
    if (partial) return { error: 'list-counts' }
    for (const key of ['count', 'total']) if (typeof out[key] === 'number') out[key] = kept.length
  }
  return { body: out, removed }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** What scoping asks of one request, before any id is placed in its project. */
export type ScopePlan =
  | { scoped: false }
  | { scoped: true, error: 'LG_ERR_PROJECT_BAD_ID' | 'LG_ERR_PROJECT_REQUIRED' | 'outside', message: string }
  | { scoped: true, refs: ProjectRef[], list: ListSpec | null, projects: ReadonlySet<number> }

/**
 * Plans the project checks of a request that a rule granted. Nothing is checked when the role is
 * not bound to projects, the user is bound to all of them, or the rule reaches no project.
 */
export function planScope (
  rule: { project: CompiledScope | null, projectsBound: boolean },
  route: string | null, params: Readonly<Record<string, string>>, query: string, body: unknown,
  binding: 'all' | readonly number[]
): ScopePlan {
  const scope = rule.project
  if (!rule.projectsBound || binding === 'all' || scope === null || scope.none) return { scoped: false }
  // A user bound to no project reaches nothing; a list must not be narrowed to an empty filter,
  // which Label Studio would read as no filter at all.
  if (binding.length === 0) return { scoped: true, error: 'outside', message: 'the user is bound to no project' }
  const found = projectRefs(scope, params, query, body)
  if ('error' in found) return { scoped: true, error: 'LG_ERR_PROJECT_BAD_ID', message: found.error }
  const list = route === null ? null : scope.lists.get(normalised(route)) ?? null
  if (found.refs.length === 0 && list === null) {
    const names = scope.sources.map((s) => s.where === 'query' ? `?${s.name}=` : `"${s.name}" in the body`)
    return { scoped: true, error: 'LG_ERR_PROJECT_REQUIRED', message: names.join(' or ') || 'a project id' }
  }
  return { scoped: true, refs: found.refs, list, projects: new Set(binding) }
}

/** The query sent upstream for a list: narrowed to the bound projects unless the client narrowed it. */
export function narrowedQuery (query: string, list: ListSpec | null, projects: ReadonlySet<number>): string {
  if (list?.narrow == null || new URLSearchParams(query).has(list.narrow)) return query
  const narrowing = `${encodeURIComponent(list.narrow)}=${[...projects].sort((a, b) => a - b).join(',')}`
  return query === '' ? narrowing : `${query}&${narrowing}`
}
