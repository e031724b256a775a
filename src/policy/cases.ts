import { readFileSync, readdirSync, statSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import { join, resolve } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { parseYamlSource, problemAt, type Problem } from '../config/source-map.js'
import { compileSchema, validateAgainst } from '../config/validate.js'
import { simulateRequest, simulateResponse } from './simulate.js'
import { PROJECT_KINDS } from './scope.js'
import type { PolicySet } from './compile.js'

// Reviewers' case files: a request in, a decision and the filtered bodies out.

const strict = { additionalProperties: false } as const

export const CaseSchema = Type.Object({
  name: Type.String({ minLength: 1 }),
  role: Type.String({ minLength: 1 }),
  method: Type.String({ minLength: 1 }),
  path: Type.String({ minLength: 1, description: 'path and optional query, as sent' }),
  headers: Type.Optional(Type.Record(Type.String(), Type.String())),
  body: Type.Optional(Type.Unknown({ description: 'sent as JSON' })),
  body_text: Type.Optional(Type.String({ description: 'sent as it is' })),
  projects: Type.Optional(Type.Union([Type.Literal('all'), Type.Array(Type.Integer({ minimum: 0 }))], {
    description: 'the caller\'s project binding; all when absent'
  })),
  objects: Type.Optional(Type.Object(Object.fromEntries(PROJECT_KINDS.filter((k) => k !== 'project').map((kind) =>
    [kind, Type.Optional(Type.Record(Type.String({ pattern: '^[0-9]+$' }), Type.Integer({ minimum: 0 })))])), {
    ...strict, description: 'the project of each object, as Label Studio would answer a lookup: {task: {87: 2}}'
  })),
  expect: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  code: Type.Optional(Type.String({ pattern: '^LG_ERR_[A-Z_]+$' })),
  refused: Type.Optional(Type.Array(Type.String())),
  forwarded: Type.Optional(Type.Unknown()),
  upstream: Type.Optional(Type.Unknown({ description: 'the JSON body Label Studio answers' })),
  response: Type.Optional(Type.Unknown({ description: 'the exact body the client must get' }))
}, strict)

const CaseFileSchema = Type.Object({ cases: Type.Array(CaseSchema) }, strict)
const validateCaseFile = compileSchema(CaseFileSchema)

export type PolicyCase = Static<typeof CaseSchema>

export interface CaseResult {
  file: string
  line: number
  name: string
  failures: string[]
}

/** Every *.yaml below the given files and folders. */
export function findCaseFiles (paths: readonly string[]): string[] {
  const out: string[] = []
  for (const path of paths.map((p) => resolve(p))) {
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort()) {
        const full = join(path, name)
        if (statSync(full).isDirectory() || /\.ya?ml$/.test(name)) out.push(...findCaseFiles([full]))
      }
    } else out.push(path)
  }
  return out
}

function show (value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value)
}

function runCase (policies: PolicySet, dropFields: ReadonlySet<string>, c: PolicyCase): string[] {
  const failures: string[] = []
  if (!policies.roles.has(c.role)) return [`no role "${c.role}" in the policies`]
  if (c.body !== undefined && c.body_text !== undefined) return ['body and body_text cannot both be given']
  if (c.response !== undefined && c.upstream === undefined) {
    return ['response needs upstream: the body Label Studio answers']
  }
  const names = Object.keys(c.headers ?? {}).map((h) => h.toLowerCase())
  if (new Set(names).size !== names.length) return ['a header is given twice (names are case-insensitive)']
  const body = c.body_text ?? (c.body === undefined ? undefined : JSON.stringify(c.body))
  const sim = simulateRequest(policies, {
    role: c.role,
    method: c.method,
    target: c.path,
    ...(c.headers ? { headers: lower(c.headers) } : {}),
    ...(body === undefined ? {} : { body }),
    ...(c.projects === undefined ? {} : { projects: c.projects }),
    ...(c.objects === undefined ? {} : { objects: canonicalObjects(c.objects) })
  })
  const got = sim.allowed ? 'allow' : `deny ${sim.code ?? ''} (${sim.message ?? ''})`
  if ((c.expect === 'allow') !== sim.allowed) failures.push(`expected ${c.expect}, got ${got}`)
  if (c.code !== undefined && c.code !== sim.code) failures.push(`expected code ${c.code}, got ${sim.code ?? 'none'}`)
  if (c.refused !== undefined && !isDeepStrictEqual([...c.refused].sort(), [...sim.refused].sort())) {
    failures.push(`expected refused ${show(c.refused)}, got ${show(sim.refused)}`)
  }
  if (c.forwarded !== undefined && !isDeepStrictEqual(c.forwarded, asJson(sim.forwarded))) {
    failures.push(`expected forwarded ${show(c.forwarded)}, got ${show(sim.forwarded)}`)
  }
  if (c.response !== undefined) {
    if (!sim.allowed || sim.rule === null) failures.push('a response is expected, but the request is denied')
    else {
      const filtered = simulateResponse(sim.rule, c.upstream, dropFields, sim.list)
      if (!isDeepStrictEqual(filtered, c.response)) {
        failures.push(`expected response ${show(c.response)}, got ${show(filtered)}`)
      }
    }
  }
  return failures
}

/** Object ids as the gateway reads them: `087` is 87. */
function canonicalObjects (objects: NonNullable<PolicyCase['objects']>): Record<string, Record<string, number>> {
  return Object.fromEntries(Object.entries(objects).map(([kind, ids]) =>
    [kind, Object.fromEntries(Object.entries(ids ?? {}).map(([id, project]) => [String(Number(id)), project]))]))
}

/** A body forwarded as text (no field list) compares as the JSON it holds, or as the text itself. */
function asJson (forwarded: unknown): unknown {
  if (typeof forwarded !== 'string') return forwarded
  try {
    return JSON.parse(forwarded)
  } catch {
    return forwarded
  }
}

function lower (headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
}

/** Runs one case file. Problems with the file itself come back as problems, not as failed cases. */
export function runCaseFile (
  file: string, policies: PolicySet, dropFields: ReadonlySet<string>
): { results: CaseResult[], problems: Problem[] } {
  const { source, problems } = parseYamlSource(file, readFileSync(file, 'utf8'))
  if (problems.length > 0) return { results: [], problems }
  const raw: unknown = source.doc.toJS() ?? {}
  const schemaProblems = validateAgainst(validateCaseFile, source, raw)
  if (schemaProblems.length > 0) return { results: [], problems: schemaProblems }
  const cases = (raw as Static<typeof CaseFileSchema>).cases
  const results = cases.map((c, i) => ({
    file,
    line: problemAt(source, ['cases', i], '').line,
    name: c.name,
    failures: runCase(policies, dropFields, c)
  }))
  return { results, problems: [] }
}
