import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, runCli, startTestGateway } from '../support/gateway.js'
import { findCaseFiles, type PolicyCase } from '../../src/policy/cases.js'
import { REPO_ROOT } from '../support/tmp.js'

// The shipped case files, twice: through `labelgate policy test`, and request by request through
// a running gateway, so that what reviewers test is what the gateway does.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const CASES = join(REPO_ROOT, 'test/policy-cases')
const EXAMPLE = join(REPO_ROOT, 'gateway.example.yaml')

t.test('labelgate policy test passes every shipped case file', async (t) => {
  const run = await runCli(['policy', 'test', CASES, '--config', EXAMPLE], process.env)
  t.equal(run.code, 0, run.stdout + run.stderr)
  const summary = /^(\d+) passed, 0 failed$/m.exec(run.stdout)
  t.ok(summary, 'a closing summary line')
  t.ok(Number(summary?.[1]) >= 60, `${summary?.[1]} cases`)
  const files = findCaseFiles([CASES]).map((f) => f.split('/').pop())
  const roles = new Set(findCaseFiles([CASES]).flatMap((f) => (parse(readFileSync(f, 'utf8')) as { cases: PolicyCase[] }).cases.map((c) => c.role)))
  for (const role of ['owner', 'administrator', 'manager', 'reviewer', 'annotator', 'anonymous']) t.ok(roles.has(role), `cases for ${role}`)
  t.ok(files.length >= 6)
})

t.test('every case decides the same through a running gateway', async (t) => {
  const upstream = await startLabelStudioStandIn()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url })
  const tokens = new Map<string, string>()
  const cases = findCaseFiles([CASES]).flatMap((f) => (parse(readFileSync(f, 'utf8')) as { cases: PolicyCase[] }).cases)
  for (const c of cases) {
    // A case's binding is the user's; its objects are put in Label Studio where the case says they are.
    const binding = c.projects === undefined || c.projects === 'all' ? 'all' : c.projects.join(',') || 'none'
    const key = `${c.role}:${binding}`
    if (c.role !== 'anonymous' && !tokens.has(key)) {
      const user = `${c.role}-${binding.replaceAll(',', '-')}@example.com`
      tokens.set(key, await gw.issueToken(user, c.role, ANNOTATOR.token, [], binding))
    }
    for (const [kind, ids] of Object.entries(c.objects ?? {})) {
      const name = TABLES[kind]
      if (name === undefined) throw new Error(`no stand-in table for ${kind}`)
      const table = upstream.state[name]
      for (const [id, project] of Object.entries(ids ?? {})) table.insert({ ...table.find(Number(id)), id: Number(id), project })
    }
    const token = tokens.get(key)
    const body = c.body_text ?? (c.body === undefined ? undefined : JSON.stringify(c.body))
    const headers: Record<string, string> = {
      ...(token ? { authorization: `Token ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...Object.fromEntries(Object.entries(c.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
    }
    upstream.clear()
    const res = await call(gw, c.method, c.path, headers, body)
    const code = res.headers['content-type']?.toString().startsWith('application/json') ? (safeJson(res.text)?.code as string | undefined) : undefined
    const gatewayRefused = typeof code === 'string' && code.startsWith('LG_ERR_') && code !== 'LG_ERR_UPSTREAM_BAD_RESPONSE'
    // The gateway's own lookups of objects' projects are not the request.
    const reached = upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === undefined)
    if (c.expect === 'deny') {
      t.equal(code, c.code ?? code, `${c.role} ${c.method} ${c.path}: ${c.name}`)
      t.ok(gatewayRefused, `denied by the gateway: ${c.name}`)
      t.equal(reached.length, 0, `nothing reached Label Studio: ${c.name}`)
    } else {
      t.notOk(gatewayRefused, `allowed: ${c.name} (${res.status} ${code ?? ''})`)
      t.equal(reached.length, 1, `forwarded: ${c.name}`)
      if (c.forwarded !== undefined) t.same(JSON.parse(reached[0]?.body.toString() ?? 'null'), c.forwarded, `forwarded body: ${c.name}`)
    }
  }
})

/** The stand-in's table for each kind of object a case can place in a project. */
const TABLES: Record<string, 'tasks' | 'annotations' | 'predictions' | 'drafts' | 'views' | 'comments' | 'reviews' | 'mlBackends'> = {
  task: 'tasks',
  annotation: 'annotations',
  prediction: 'predictions',
  draft: 'drafts',
  view: 'views',
  comment: 'comments',
  review: 'reviews',
  ml_backend: 'mlBackends'
}

function safeJson (text: string): Record<string, unknown> | null {
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch {
    return null
  }
}
