import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { formatProblems } from '../config/source-map.js'
import { findCaseFiles, runCaseFile } from '../policy/cases.js'
import { diffPolicies } from '../policy/diff.js'
import { loadPolicies } from '../policy/load.js'
import { simulateRequest, type SimulatedRequest } from '../policy/simulate.js'
import { describePlacement, PROJECT_KINDS } from '../policy/scope.js'
import type { CompiledRule, PolicySet } from '../policy/compile.js'
import type { GatewayConfig } from '../config/types.js'
import { CliError, parseProjectList } from './shared.js'

type Out = (text: string) => void

/** A path as a reviewer typed it: relative to the working folder when below it. */
function shown (file: string): string {
  const rel = relative(process.cwd(), file)
  return rel.startsWith('..') ? file : rel
}

/** `policy test`: every case file; a failure names its file and line; exit 1 on any failure. */
export function policyTest (config: GatewayConfig, policies: PolicySet, paths: string[], out: Out): void {
  if (paths.length === 0) throw new CliError('usage: labelgate policy test CASES... (files or folders of *.yaml)', 2)
  let files: string[]
  try {
    files = findCaseFiles(paths)
  } catch (err) {
    throw new CliError(`cannot read the case files: ${(err as Error).message}`, 2)
  }
  // A run that tests nothing must not look like a run that passed.
  if (files.length === 0) throw new CliError(`no case files (*.yaml) in ${paths.join(', ')}`, 1)
  let passed = 0
  let failed = 0
  const problems: string[] = []
  for (const file of files) {
    const run = runCaseFile(file, policies, config.filters.dropFields)
    if (run.problems.length > 0) problems.push(formatProblems(run.problems))
    for (const result of run.results) {
      if (result.failures.length === 0) {
        passed++
        continue
      }
      failed++
      out(`FAIL ${shown(result.file)}:${result.line} ${result.name}`)
      for (const failure of result.failures) out(`     ${failure}`)
    }
  }
  for (const problem of problems) out(problem)
  out(`${passed} passed, ${failed + problems.length} failed`)
  if (failed > 0 || problems.length > 0) {
    throw new CliError(`${failed} case(s) failed, ${problems.length} case file problem(s)`, 1)
  }
}

function describeList (list: readonly string[] | null | undefined, none: string): string {
  if (list === null || list === undefined) return none
  return list.length === 0 ? '(none)' : list.join(', ')
}

export interface ExplainRequest {
  role: string
  method: string | undefined
  path: string | undefined
  bodyFile: string | undefined
  /** `1,2` or `all`; all when absent. */
  projects: string | undefined
  /** `task:87=2`: the project Label Studio would name for an object. */
  objects: readonly string[]
}

function explainBinding (request: ExplainRequest): Pick<SimulatedRequest, 'projects' | 'objects'> {
  const objects: Record<string, Record<string, number>> = {}
  const kinds = PROJECT_KINDS.filter((k) => k !== 'project')
  for (const text of request.objects) {
    const match = /^([a-z_]+):([0-9]{1,15})=([0-9]{1,15})$/.exec(text)
    if (!match) throw new CliError(`--object ${text}: write KIND:ID=PROJECT, such as task:87=2`, 2)
    const [, kind, id, project] = match as unknown as [string, string, string, string]
    if (!(kinds as string[]).includes(kind)) {
      throw new CliError(`--object ${text}: the kind is one of ${kinds.join(', ')}`, 2)
    }
    objects[kind] = { ...objects[kind], [String(Number(id))]: Number(project) }
  }
  return {
    ...(request.projects === undefined ? {} : { projects: parseProjectList(request.projects) }),
    objects
  }
}

function describeScope (rule: CompiledRule): string {
  if (!rule.projectsBound) return 'the role reaches every project'
  const scope = rule.project
  if (scope === null || scope.none) return 'none: the rule reaches no project\'s data'
  const params = new Set(rule.templates.flatMap((t) => t.segments.flatMap((s) =>
    s.kind === 'param' && (PROJECT_KINDS as readonly string[]).includes(s.name) ? [`path {${s.name}}`] : [])))
  const sources = scope.sources.map((s) => `${s.where} ${s.name} (${s.kind})`)
  const lists = [...scope.lists].map(([template, list]) =>
    `list ${template}: items by ${list.items ?? '(body)'}[].${list.fieldText}` +
    (list.narrow === null ? '' : `, narrowed with ?${list.narrow}=`))
  return [...params, ...sources, ...lists].join('; ')
}

/** `policy explain`: the deciding rule, where it is written, and what its lists do to a body. */
export function policyExplain (policies: PolicySet, request: ExplainRequest, out: Out): void {
  const { role, method, path, bodyFile } = request
  if (!method || !path) throw new CliError('usage: labelgate policy explain --role ROLE METHOD PATH [--body FILE]', 2)
  if (!policies.roles.has(role)) {
    throw new CliError(`no role "${role}"; roles: ${[...policies.roles.keys()].sort().join(', ')}`, 1)
  }
  const body = bodyFile === undefined ? undefined : readFileSync(bodyFile, 'utf8')
  const sim = simulateRequest(policies, {
    role, method, target: path, ...(body === undefined ? {} : { body }), ...explainBinding(request)
  })
  out(`${method} ${path} as ${role}: ${sim.allowed ? 'allowed' : `denied, ${sim.code ?? ''}`}`)
  if (!sim.allowed && sim.message) out(`  reason    ${sim.message}`)
  if (sim.route) out(`  route     ${sim.route}`)
  const rule = sim.rule
  if (rule === null) {
    if (!sim.allowed && sim.route === null) {
      out('  rule      none: no rule of this role matches the path, so it is denied')
    }
    return
  }
  out(`  rule      ${rule.id} (${shown(rule.file)}:${rule.line})`)
  out(`  methods   ${[...rule.methods].join(', ')}`)
  const query = rule.queryList ? Object.entries(rule.queryList).map(([k, v]) => `${k}: ${JSON.stringify(v)}`) : null
  out(`  query     ${describeList(query, 'any parameters')}`)
  const accepted = rule.request
    ? `${rule.request.body} with fields ${describeList(rule.request.fieldList, '')}`
    : 'body forwarded unchecked'
  out(`  request   ${accepted}`)
  if (rule.request && rule.request.values.length > 0) {
    out(`  values    ${rule.request.values.map((v) => `${v.path}: ${v.spec.kind}`).join(', ')}`)
  }
  out(`  response  ${rule.response ? `fields ${describeList(rule.response.fieldList, '')}` : 'streamed unfiltered'}`)
  out(`  project   ${describeScope(rule)}`)
  for (const p of sim.placements) {
    out(`  checked   ${describePlacement(p)} (${p.how === 'case' ? '--object' : p.how})`)
  }
  if (sim.list !== null) out(`  list      items kept for projects ${[...sim.list.projects].join(', ')}`)
  if (body === undefined) return
  const forwarded = typeof sim.forwarded === 'string' ? sim.forwarded : JSON.stringify(sim.forwarded)
  if (sim.allowed) out(`  forwarded ${forwarded}`)
  else if (sim.refused.length > 0) out(`  refused   ${sim.refused.join(', ')}`)
}

/** `policy diff`: grants and fields added (+), removed (-) or changed (~); exit 1 when anything widened. */
export function policyDiff (before: string | undefined, after: string | undefined, out: Out): void {
  if (!before || !after) throw new CliError('usage: labelgate policy diff OLD_DIR NEW_DIR', 2)
  const load = (dir: string): PolicySet => {
    try {
      return loadPolicies(dir)
    } catch (err) {
      throw new CliError((err as Error).message, 1)
    }
  }
  const diffs = diffPolicies(load(before), load(after))
  let widened = false
  for (const diff of diffs.filter((d) => d.lines.length > 0)) {
    out(`role ${diff.role}${diff.widened ? ' (widened)' : ''}`)
    for (const line of diff.lines) out(`  ${line}`)
    widened ||= diff.widened
  }
  out(widened ? 'access widened' : 'no access widened')
  if (widened) throw new CliError('the new policies grant more than the old ones', 1)
}
