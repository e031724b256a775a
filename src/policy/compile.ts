import { problemAt, type PathSegment, type Problem, type YamlSource } from '../config/source-map.js'
import { compileFields, parseFieldPath, type FieldNode, type FieldSegment } from './fields.js'
import { compileQuerySpec, type QuerySpec, type RawQuerySpec } from './query.js'
import { normalised, parseTemplate, compareSpecificity, templatesOverlap, type PathTemplate } from './template.js'
import { compileScope, type CompiledScope } from './scope.js'
import type { RawPolicyFile, RawRule, PolicyMethod } from './schema.js'

// Policies compiled into immutable lookup structures: the request path never parses YAML or a
// template. Every compiled rule keeps its file and line so that decisions can say where they came from.

export interface CompiledRequestSpec {
  body: 'object' | 'array' | 'any'
  fields: FieldNode
  /** The list as written, for explain and diff. */
  fieldList: readonly string[]
  contentTypes: ReadonlySet<'json' | 'form' | 'multipart'>
  maxBytes: number | null
  /** Value checks on fields of the body, by field path. */
  values: ReadonlyArray<{ path: string, segments: readonly FieldSegment[], spec: QuerySpec, raw: RawQuerySpec }>
}

export interface CompiledRule {
  id: string
  role: string
  file: string
  line: number
  methods: ReadonlySet<PolicyMethod>
  templates: readonly PathTemplate[]
  /** Allowed query parameters; null: any query. */
  query: ReadonlyMap<string, QuerySpec> | null
  /** The query specs as written, for explain and diff. */
  queryList: Readonly<Record<string, RawQuerySpec>> | null
  request: CompiledRequestSpec | null
  response: { fields: FieldNode, fieldList: readonly string[] } | null
  /** Where the request's project comes from; null when the rule does not say (roles that are not bound). */
  project: CompiledScope | null
  /** The role binds its users to projects: the rule checks the project of every id it lets in. */
  projectsBound: boolean
  /** What an id outside the caller's projects is answered with. */
  otherProjects: 'forbidden' | 'not-found'
}

export interface CompiledRole {
  name: string
  description: string
  file: string
  projects: 'bound' | 'all'
  rules: readonly CompiledRule[]
}

export interface PolicySet {
  dir: string
  roles: ReadonlyMap<string, CompiledRole>
}

export function compileRole (source: YamlSource, raw: RawPolicyFile, problems: Problem[]): CompiledRole {
  const ids = new Set<string>()
  const rules: CompiledRule[] = []
  const bound = raw.projects === 'bound'
  // The file may have failed its schema check; compile what is well-formed so that every problem
  // of the file is reported in one run.
  const rawRules: unknown[] = Array.isArray(raw.rules) ? raw.rules : []
  rawRules.forEach((candidate, r) => {
    if (!isWellFormed(candidate)) return
    const rule = candidate
    if (ids.has(rule.id)) problems.push(problemAt(source, ['rules', r, 'id'], `rule id "${rule.id}" is used twice`))
    ids.add(rule.id)
    const templates = compileTemplates(source, rule, r, problems)
    const methods = new Set<PolicyMethod>(rule.methods)
    // HEAD is a GET without a body: wherever GET is allowed, so is HEAD.
    if (methods.has('GET')) methods.add('HEAD')
    const line = source.lineCounter.linePos(nodeOffset(source, r)).line
    const at = (...path: PathSegment[]): PathSegment[] => ['rules', r, ...path]
    const query = compileQuery(source, rule, at, problems)
    const requestFields = checkFieldPaths(source, rule.request?.fields, at('request', 'fields'), problems)
    const responseFields = checkFieldPaths(source, rule.response?.fields, at('response', 'fields'), problems)
    const project = compileScope({ source, at, problems, bound }, rule, templates)
    rules.push(Object.freeze({
      id: rule.id,
      role: raw.role,
      file: source.file,
      line,
      methods,
      templates: Object.freeze(templates),
      query,
      queryList: rule.query ? Object.freeze({ ...rule.query }) : null,
      request: rule.request && requestFields
        ? Object.freeze({
          body: rule.request.body,
          fields: compileFields(requestFields),
          fieldList: Object.freeze(requestFields),
          contentTypes: new Set(rule.request.content_types),
          maxBytes: rule.request.max_bytes ?? null,
          values: compileValues(source, rule, at, problems)
        })
        : null,
      response: rule.response && responseFields
        ? Object.freeze({ fields: compileFields(responseFields), fieldList: Object.freeze(responseFields) })
        : null,
      project,
      projectsBound: bound,
      otherProjects: rule.other_projects ?? raw.other_projects ?? 'forbidden'
    }))
  })
  findOverlaps(source, rules, problems)
  return Object.freeze({
    name: raw.role,
    description: raw.description,
    file: source.file,
    projects: bound ? 'bound' : 'all',
    rules: Object.freeze(rules)
  })
}

/** A rule's templates, most specific first; one spelled twice (`/a/` and `/a`) is a problem. */
function compileTemplates (source: YamlSource, rule: RawRule, r: number, problems: Problem[]): PathTemplate[] {
  const templates: PathTemplate[] = []
  const seen = new Set<string>()
  rule.paths.forEach((path, p) => {
    const parsed = parseTemplate(path)
    if ('error' in parsed) {
      problems.push(problemAt(source, ['rules', r, 'paths', p], `bad path template "${path}": ${parsed.error}`))
      return
    }
    const plain = normalised(path)
    const twice = `${plain} is listed twice in rule "${rule.id}"`
    if (seen.has(plain)) problems.push(problemAt(source, ['rules', r, 'paths', p], twice))
    seen.add(plain)
    templates.push(parsed)
  })
  return templates.sort(compareSpecificity)
}

/**
 * Two rules of one role that can match the same method and path are an error: which rule's field
 * lists apply would depend on rule order, and a reviewer reading one rule would not see the other.
 */
function findOverlaps (source: YamlSource, rules: readonly CompiledRule[], problems: Problem[]): void {
  rules.forEach((later, j) => {
    for (const earlier of rules.slice(0, j)) {
      const methods = [...later.methods].filter((m) => earlier.methods.has(m))
      if (methods.length === 0) continue
      for (const [p, mine] of later.templates.entries()) {
        const theirs = earlier.templates.find((t) => templatesOverlap(t, mine))
        if (!theirs) continue
        const index = rawIndex(source, j, mine.source, p)
        problems.push(problemAt(source, ['rules', j, 'paths', index],
          `${methods.join(', ')} ${mine.source} overlaps rule "${earlier.id}" (${theirs.source}): ` +
          'one request must match one rule'))
      }
    }
  })
}

/** The index of a template in its rule's paths as written (compiled templates are reordered). */
function rawIndex (source: YamlSource, rule: number, template: string, fallback: number): number {
  const paths = source.doc.getIn(['rules', rule, 'paths']) as { items?: Array<{ value?: unknown }> } | undefined
  const index = paths?.items?.findIndex((item) => item.value === template) ?? -1
  return index === -1 ? fallback : index
}

function checkFieldPaths (
  source: YamlSource, paths: readonly string[] | undefined, at: PathSegment[], problems: Problem[]
): string[] | null {
  if (!Array.isArray(paths)) return null
  let ok = true
  paths.forEach((path, i) => {
    const parsed = typeof path === 'string' ? parseFieldPath(path) : { error: 'must be a string' }
    if ('error' in parsed) {
      ok = false
      problems.push(problemAt(source, [...at, i], `bad field path "${String(path)}": ${parsed.error}`))
    }
  })
  return ok ? [...paths] : null
}

function compileValues (
  source: YamlSource, rule: RawRule, at: (...p: PathSegment[]) => PathSegment[], problems: Problem[]
): CompiledRequestSpec['values'] {
  const out: Array<CompiledRequestSpec['values'][number]> = []
  for (const [path, raw] of Object.entries(rule.request?.values ?? {})) {
    const segments = parseFieldPath(path)
    const spec = compileQuerySpec(raw)
    const where = at('request', 'values', path)
    if ('error' in segments) problems.push(problemAt(source, where, `bad field path "${path}": ${segments.error}`))
    else if ('error' in spec) problems.push(problemAt(source, where, `values of "${path}": ${spec.error}`))
    else out.push({ path, segments, spec, raw })
  }
  return out
}

function compileQuery (
  source: YamlSource, rule: RawRule, at: (...p: PathSegment[]) => PathSegment[], problems: Problem[]
): ReadonlyMap<string, QuerySpec> | null {
  if (!rule.query || typeof rule.query !== 'object') return null
  const specs = new Map<string, QuerySpec>()
  for (const [name, raw] of Object.entries(rule.query)) {
    const spec = compileQuerySpec(raw)
    if ('error' in spec) problems.push(problemAt(source, at('query', name), `query parameter "${name}": ${spec.error}`))
    else specs.set(name, spec)
  }
  return specs
}

function isWellFormed (rule: unknown): rule is RawRule {
  const r = rule as Partial<RawRule> | null
  return typeof r === 'object' && r !== null && typeof r.id === 'string' && Array.isArray(r.methods) &&
    Array.isArray(r.paths) && r.paths.every((p) => typeof p === 'string')
}

function nodeOffset (source: YamlSource, ruleIndex: number): number {
  const node = source.doc.getIn(['rules', ruleIndex], true) as { range?: [number, number, number] } | undefined
  return node?.range?.[0] ?? 0
}
