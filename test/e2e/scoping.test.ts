import { join } from 'node:path'
import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'
import { REPO_ROOT } from '../support/tmp.js'
import { loadPolicies } from '../../src/policy/load.js'
import { PROJECT_KINDS, type ProjectKind } from '../../src/policy/scope.js'
import type { CompiledRule } from '../../src/policy/compile.js'
import type { PathTemplate } from '../../src/policy/template.js'

// Every id-taking route of the shipped roles that are bound to projects, enumerated from the policy
// files: for a user bound to project 1, each id of project 2 in the path, the query or the body is
// refused before anything but the gateway's own lookups reaches Label Studio, while the same request
// with ids of project 1 is forwarded. A rule added without a project source fails `check` first.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const policies = loadPolicies(join(REPO_ROOT, 'policies'))
const boundRoles = [...policies.roles.values()].filter((r) => r.projects === 'bound')

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url })

/** The id of one object of each kind in a project, read from the stand-in's data. */
function idsOf (project: number): Record<ProjectKind, number> {
  const s = upstream.state
  const first = (rows: Array<{ id?: unknown }>, kind: string): number => {
    const id = rows[0]?.id
    if (typeof id !== 'number') throw new Error(`the stand-in has no ${kind} in project ${project}`)
    return id
  }
  const annotations = s.annotations.where((a) => a.project === project)
  const tasks = s.tasks.where((x) => x.project === project).map((x) => x.id)
  return {
    project,
    task: first(s.tasks.where((x) => x.project === project), 'task'),
    annotation: first(annotations, 'annotation'),
    prediction: first(s.predictions.where((p) => p.project === project), 'prediction'),
    draft: first(s.drafts.where((d) => tasks.includes(d.task)), 'draft'),
    view: first(s.views.where((v) => v.project === project), 'view'),
    comment: first(s.comments.where((c) => c.project === project), 'comment'),
    review: first(s.reviews.where((r) => annotations.some((a) => a.id === r.annotation)), 'review'),
    ml_backend: first(s.mlBackends.where((m) => m.project === project), 'ML backend')
  }
}

const OWN = idsOf(1)
const OTHER = idsOf(2)

/** Where one id sits in a request: a path parameter, a query parameter or a body field path. */
interface Position { where: 'path' | 'query' | 'body', name: string, kind: ProjectKind }

function positions (rule: CompiledRule, template: PathTemplate, method: string): Position[] {
  const out: Position[] = []
  for (const seg of template.segments) {
    if (seg.kind === 'param' && (PROJECT_KINDS as readonly string[]).includes(seg.name)) {
      out.push({ where: 'path', name: seg.name, kind: seg.name as ProjectKind })
    }
  }
  for (const source of rule.project?.sources ?? []) {
    if (source.where === 'body' && (method === 'GET' || method === 'DELETE')) continue
    out.push({ where: source.where, name: source.name, kind: source.kind })
  }
  return out
}

/** Sets `value` at a field path such as `selectedItems.included[]` inside `body`. */
function setAt (body: Record<string, unknown>, path: string, value: number): void {
  const parts = path.split('.')
  let at = body
  parts.forEach((part, i) => {
    const key = part.replace('[]', '')
    const last = i === parts.length - 1
    if (last) at[key] = part.endsWith('[]') ? [value] : value
    else at = (at[key] ??= {}) as Record<string, unknown>
  })
}

interface Built { path: string, body: string | undefined }

function build (rule: CompiledRule, template: PathTemplate, method: string, foreign: Position | null): Built {
  const idFor = (p: Position): number => (foreign !== null && p.where === foreign.where && p.name === foreign.name
    ? OTHER
    : OWN)[p.kind]
  const all = positions(rule, template, method)
  const segments = template.segments.map((seg) => {
    if (seg.kind === 'literal') return seg.text
    if (seg.kind === 'rest') return 'x'
    const position = all.find((p) => p.where === 'path' && p.name === seg.name)
    return position ? String(idFor(position)) : seg.int ? '1' : 'x'
  })
  const trailing = template.source.endsWith('/') && segments.length > 0 ? '/' : ''
  const query = all.filter((p) => p.where === 'query').map((p) => `${p.name}=${idFor(p)}`).join('&')
  const bodySources = all.filter((p) => p.where === 'body')
  let body: string | undefined
  if (bodySources.length > 0) {
    const object: Record<string, unknown> = {}
    for (const p of bodySources) setAt(object, p.name, idFor(p))
    body = JSON.stringify(rule.request?.body === 'array' ? [object] : object)
  }
  return { path: `/${segments.join('/')}${trailing}${query === '' ? '' : `?${query}`}`, body }
}

/** Paths the gateway answers itself, never forwarding them. */
const ANSWERED_BY_GATEWAY = /^\/(tasks|projects)\/[^/]+\/(resolve|presign)\//

function forwarded (method: string, path: string): boolean {
  return upstream.requests.some((r) => r.headers['x-labelgate-lookup'] === undefined && r.method === method &&
    r.url === path)
}

const cases = boundRoles.flatMap((role) => role.rules.flatMap((rule) => {
  if (rule.project === null || rule.project.none) return []
  return rule.templates.flatMap((template) => [...rule.methods].filter((m) => m !== 'HEAD')
    .map((method) => ({ role: role.name, rule, template, method })))
}))

t.ok(boundRoles.length >= 2, 'annotator and reviewer are bound to projects')
t.ok(cases.length > 40, `${cases.length} route and method pairs take project ids`)

for (const role of boundRoles) {
  t.test(`${role.name}: every id of another project is refused, the same request with own ids is forwarded`, async (t) => {
    const token = await gw.issueToken(`${role.name}@example.com`, role.name, ANNOTATOR.token, [], '1')
    const headers = { authorization: `Token ${token}`, 'content-type': 'application/json' }
    for (const c of cases.filter((x) => x.role === role.name)) {
      const name = `${c.rule.id}: ${c.method} ${c.template.source}`
      const list = c.rule.project?.lists.has(c.template.source.replace(/\/$/, '')) ?? false
      const all = positions(c.rule, c.template, c.method)
      if (!all.some((p) => p.where === 'path') && !list) {
        // Without a path id, the project must come from the query or the body: naming none is refused.
        upstream.clear()
        const empty = c.rule.request === null ? undefined : c.rule.request.body === 'array' ? '[{}]' : '{}'
        const res = await call(gw, c.method, c.template.source, headers, empty)
        t.equal(res.status, 400, `${name}: no project named`)
        t.match(res.json(), { code: 'LG_ERR_PROJECT_REQUIRED' }, `${name}: no project named`)
        t.equal(upstream.requests.length, 0, `${name}: nothing forwarded`)
      }
      upstream.clear()
      const own = build(c.rule, c.template, c.method, null)
      const allowed = await call(gw, c.method, own.path, headers, own.body)
      t.notMatch(allowed.text, /LG_ERR_(PROJECT|POLICY)/, `${name}: own ids pass (${own.path})`)
      if (ANSWERED_BY_GATEWAY.test(own.path)) {
        // Storage resolvers are the gateway's own (test/e2e/media.test.ts); with no fileuri, it says so.
        t.match(allowed.json(), { code: 'LG_ERR_MEDIA_BAD_URI' }, `${name}: answered by the gateway`)
        t.notOk(forwarded(c.method, own.path), `${name}: not forwarded`)
      } else t.ok(forwarded(c.method, own.path), `${name}: forwarded with own ids`)
      for (const position of all) {
        upstream.clear()
        const foreign = build(c.rule, c.template, c.method, position)
        const res = await call(gw, c.method, foreign.path, headers, foreign.body)
        const at = `${name}: ${position.where} ${position.name} of project 2 (${foreign.path} ${foreign.body ?? ''})`
        const notFound = c.rule.otherProjects === 'not-found'
        t.equal(res.status, notFound ? 404 : 403, at)
        t.match(res.json(), { code: notFound ? 'LG_ERR_PROJECT_NOT_FOUND' : 'LG_ERR_PROJECT_FORBIDDEN' }, at)
        const others = upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === undefined)
        t.same(others.map((r) => `${r.method} ${r.url}`), [], `${at}: only lookups reach Label Studio`)
        t.ok(upstream.requests.every((r) => r.method === 'GET' && r.headers.authorization === `Token ${ANNOTATOR.token}`),
          `${at}: lookups are GETs with the caller's own credential`)
      }
    }
  })
}
