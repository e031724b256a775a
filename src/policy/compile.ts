import { problemAt, type Problem, type YamlSource } from '../config/source-map.js'
import { parseTemplate, compareSpecificity, type PathTemplate } from './template.js'
import type { RawPolicyFile, RawRule, PolicyMethod } from './schema.js'

// Policies compiled into immutable lookup structures: the request path never parses YAML or a
// template. Every compiled rule keeps its file and line so that decisions can say where they came from.

export interface CompiledRule {
  id: string
  role: string
  file: string
  line: number
  methods: ReadonlySet<PolicyMethod>
  templates: readonly PathTemplate[]
}

export interface CompiledRole {
  name: string
  description: string
  file: string
  rules: readonly CompiledRule[]
}

export interface PolicySet {
  dir: string
  roles: ReadonlyMap<string, CompiledRole>
}

export function compileRole (source: YamlSource, raw: RawPolicyFile, problems: Problem[]): CompiledRole {
  const ids = new Set<string>()
  const grants = new Map<string, string>()
  const rules: CompiledRule[] = []
  // The file may have failed its schema check; compile what is well-formed so that every problem
  // of the file is reported in one run.
  const rawRules: unknown[] = Array.isArray(raw.rules) ? raw.rules : []
  rawRules.forEach((candidate, r) => {
    if (!isWellFormed(candidate)) return
    const rule = candidate
    if (ids.has(rule.id)) problems.push(problemAt(source, ['rules', r, 'id'], `rule id "${rule.id}" is used twice`))
    ids.add(rule.id)
    const templates: PathTemplate[] = []
    rule.paths.forEach((path, p) => {
      const parsed = parseTemplate(path)
      if ('error' in parsed) {
        problems.push(problemAt(source, ['rules', r, 'paths', p], `bad path template "${path}": ${parsed.error}`))
        return
      }
      templates.push(parsed)
      for (const method of rule.methods) {
        const key = `${method} ${normalised(path)}`
        const earlier = grants.get(key)
        const at = ['rules', r, 'paths', p]
        if (earlier) problems.push(problemAt(source, at, `${key} is already granted by rule "${earlier}"`))
        else grants.set(key, rule.id)
      }
    })
    templates.sort(compareSpecificity)
    const methods = new Set<PolicyMethod>(rule.methods)
    // HEAD is a GET without a body: wherever GET is allowed, so is HEAD.
    if (methods.has('GET')) methods.add('HEAD')
    const line = source.lineCounter.linePos(nodeOffset(source, r)).line
    rules.push(Object.freeze({
      id: rule.id, role: raw.role, file: source.file, line, methods, templates: Object.freeze(templates)
    }))
  })
  return Object.freeze({ name: raw.role, description: raw.description, file: source.file, rules: Object.freeze(rules) })
}

function isWellFormed (rule: unknown): rule is RawRule {
  const r = rule as Partial<RawRule> | null
  return typeof r === 'object' && r !== null && typeof r.id === 'string' && Array.isArray(r.methods) &&
    Array.isArray(r.paths) && r.paths.every((p) => typeof p === 'string')
}

function normalised (path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

function nodeOffset (source: YamlSource, ruleIndex: number): number {
  const node = source.doc.getIn(['rules', ruleIndex], true) as { range?: [number, number, number] } | undefined
  return node?.range?.[0] ?? 0
}
