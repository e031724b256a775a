import t from 'tap'
import fc from 'fast-check'
import { compileFields, filterResponse, keepFields, refusedFields } from '../../src/policy/fields.js'
import { judgeJson } from '../../src/policy/body.js'
import { evaluate } from '../../src/policy/evaluate.js'
import { matchTemplate, parseTemplate, splitPath, type PathTemplate } from '../../src/policy/template.js'
import type { CompiledRequestSpec, CompiledRole, CompiledRule, PolicySet } from '../../src/policy/compile.js'

// Properties over generated allowlists, bodies and paths, each checked against an independent
// oracle written the obvious slow way.

const KEYS = ['a', 'b', 'c', 'id', 'data']
const key = fc.constantFrom(...KEYS)
const scalar = fc.oneof(fc.integer(), fc.string({ maxLength: 3 }), fc.boolean(), fc.constant(null))

/** Objects nested three deep, without arrays: the oracle below needs no array rule. */
const objectBody = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    scalar, fc.dictionary(key, tie('node'), { maxKeys: 4 }))
})).node.filter((v) => typeof v === 'object' && v !== null)

const fieldPath = fc.array(fc.oneof(key, fc.constant('*')), { minLength: 1, maxLength: 3 }).map((s) => s.join('.'))
const allowlist = fc.uniqueArray(fieldPath, { maxLength: 5 })

interface Leaf { path: string[], empty: boolean }

/** Every path from the root to a scalar or to an empty object. */
function leaves (value: unknown, prefix: string[] = []): Leaf[] {
  if (typeof value !== 'object' || value === null) return [{ path: prefix, empty: false }]
  const entries = Object.entries(value)
  if (entries.length === 0) return [{ path: prefix, empty: true }]
  return entries.flatMap(([k, v]) => leaves(v, [...prefix, k]))
}

/**
 * The oracle: a scalar is allowed when some entry names a prefix of its path (* matching any key);
 * an empty object, when some entry runs through it or names a prefix of it.
 */
function oracleAllows (list: readonly string[], leaf: Leaf): boolean {
  return list.some((entry) => {
    const parts = entry.split('.')
    if (parts.length > leaf.path.length && !leaf.empty) return false
    return parts.slice(0, leaf.path.length).every((p, i) => p === '*' || p === leaf.path[i])
  })
}

function allCovered (list: readonly string[], value: unknown): boolean {
  return leaves(value).filter((l) => l.path.length > 0).every((l) => oracleAllows(list, l))
}

t.test('a body is accepted exactly when every leaf is covered by the allowlist', async (t) => {
  fc.assert(fc.property(objectBody, allowlist, (body, list) => {
    const spec: CompiledRequestSpec = { body: 'object', fields: compileFields(list), fieldList: list, contentTypes: new Set(['json']), maxBytes: null, values: [] }
    const judged = judgeJson(spec, JSON.stringify(body))
    const covered = allCovered(list, body)
    return ('value' in judged) === covered
  }), { numRuns: 2000 })
  t.pass('2,000 generated bodies and allowlists')
})

t.test('nothing outside a response allowlist reaches the client', async (t) => {
  fc.assert(fc.property(objectBody, allowlist, (body, list) => {
    const kept = keepFields(body, compileFields(list)) ?? {}
    return allCovered(list, kept)
  }), { numRuns: 2000 })
  t.pass('2,000 generated responses')
})

t.test('what the response filter keeps always passes the request check (arrays and envelopes included)', async (t) => {
  const json = fc.jsonValue({ maxDepth: 4 })
  const paths = fc.uniqueArray(fc.array(fc.oneof(key, key.map((k) => `${k}[]`), fc.constant('*')), { minLength: 1, maxLength: 3 })
    .map((s) => s.join('.')), { maxLength: 5 })
  fc.assert(fc.property(json, paths, (body, list) => {
    const node = compileFields(list)
    return refusedFields(keepFields(body, node) ?? {}, node).length === 0
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.array(objectBody, { maxLength: 4 }), allowlist, (items, list) => {
    const out = filterResponse({ count: items.length, next: null, previous: null, secret: 1, results: items }, compileFields(list)) as Record<string, unknown>
    const results = out.results as unknown[]
    return !('secret' in out) && results.every((r) => allCovered(list, r))
  }), { numRuns: 500 })
  t.pass('generated JSON values, lists and paginated envelopes')
})

// Paths and templates over a small alphabet, so that matches and near-misses both occur.
const segment = fc.constantFrom('api', 'tasks', 'projects', '1', '42', 'x1', 'next')
const templateSegment = fc.oneof(segment, fc.constant('{p}'), fc.constant('{n:int}'))
const template = fc.array(templateSegment, { minLength: 1, maxLength: 4 })
  .chain((segs) => fc.boolean().map((rest) => '/' + [...segs.map((s, i) => s.startsWith('{') ? s.replace('}', `${i}}`).replace(':int' + i, i + ':int') : s), ...(rest ? ['**'] : [])].join('/')))
const requestPath = fc.array(segment, { minLength: 1, maxLength: 5 }).chain((segs) => fc.boolean().map((slash) => '/' + segs.join('/') + (slash ? '/' : '')))

function oracleMatches (source: string, path: string): boolean {
  const body = splitPath(source).map((s) => {
    if (s === '**') return '(/[^/]+)+'
    if (/^\{\w+:int\}$/.test(s)) return '/[0-9]+'
    if (/^\{\w+\}$/.test(s)) return '/[^/]+'
    return '/' + s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }).join('')
  return new RegExp(`^${body || ''}/?$`).test(path)
}

function policyOf (templates: PathTemplate[]): PolicySet {
  const rule: CompiledRule = {
    id: 'r',
    role: 'x',
    file: 'x.yaml',
    line: 1,
    methods: new Set(['GET', 'HEAD']),
    templates,
    query: null,
    queryList: null,
    request: null,
    response: null,
    project: null,
    projectsBound: false,
    otherProjects: 'forbidden'
  }
  const role: CompiledRole = { name: 'x', description: '', file: 'x.yaml', projects: 'all', rules: [rule] }
  return { dir: '.', roles: new Map([['x', role]]) }
}

t.test('an unmatched request is always denied, and a matched one granted', async (t) => {
  fc.assert(fc.property(fc.uniqueArray(template, { minLength: 1, maxLength: 4 }), requestPath, (sources, path) => {
    const templates = sources.map((s) => parseTemplate(s)).filter((p): p is PathTemplate => !('error' in p))
    const expected = templates.some((tpl) => oracleMatches(tpl.source, path))
    const decision = evaluate(policyOf(templates), 'x', 'GET', path)
    const direct = templates.some((tpl) => matchTemplate(tpl, splitPath(path)) !== null)
    return decision.granted === expected && direct === expected && !evaluate(policyOf(templates), 'x', 'POST', path).granted
  }), { numRuns: 3000 })
  t.pass('3,000 generated policies and paths')
})
