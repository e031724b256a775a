import t from 'tap'
import { Redis } from 'ioredis'
import { readFileSync } from 'node:fs'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'
import { startRedis } from '../support/redis.js'

// Project scoping against a real Redis (the object cache is shared there) and the Label Studio
// stand-in: bindings that change, lookups that fail, lists, bad ids, and what the access line says.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const redis = await startRedis(t)
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, { store: 'redis', redis, upstreamUrl: upstream.url })
const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token, [], '1')
const AUTH = { authorization: `Token ${token}` }
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' }

const taskOf = (project: number): number => Number(upstream.state.tasks.where((x) => x.project === project)[0]?.id)
const annotationOf = (project: number): number => Number(upstream.state.annotations.where((a) => a.project === project)[0]?.id)
const lookups = (): string[] => upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] !== undefined).map((r) => r.url)
const forwarded = (): string[] => upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === undefined).map((r) => `${r.method} ${r.url}`)

async function lastLine (): Promise<Record<string, unknown>> {
  const lines = await gw.waitForAccessLines(gw.logs.accessLines().length)
  return lines.at(-1) ?? {}
}

t.test('a lookup asks Label Studio once, with the caller\'s credential; the answer is shared in Redis', async (t) => {
  const annotation = annotationOf(1)
  upstream.clear()
  const first = await call(gw, 'GET', `/api/annotations/${annotation}/`, AUTH)
  t.equal(first.status, 200)
  t.same(lookups(), [`/api/annotations/${annotation}/`])
  t.equal(upstream.requests[0]?.headers.authorization, `Token ${ANNOTATOR.token}`)
  t.match((await lastLine()).project, { checks: [{ via: 'path annotation', kind: 'annotation', id: annotation, project: 1, how: 'lookup' }] })
  upstream.clear()
  t.equal((await call(gw, 'GET', `/api/annotations/${annotation}/`, AUTH)).status, 200)
  t.same(lookups(), [], 'the second request is answered from the cache')
  t.match((await lastLine()).project, { checks: [{ how: 'cache', project: 1 }] })
  const client = new Redis(redis.url, {
    username: redis.username, password: redis.password, tls: { ca: readFileSync(redis.ca), cert: readFileSync(redis.cert), key: readFileSync(redis.key) }
  })
  t.teardown(() => client.quit())
  t.equal(await client.get(`${redis.keyPrefix}object:annotation:${annotation}`), '1', 'kept in Redis for every replica')
  t.ok(await client.pttl(`${redis.keyPrefix}object:annotation:${annotation}`) > 0, 'with an expiry')
})

t.test('a draft names only its task: the gateway follows it to the project', async (t) => {
  const draft = Number(upstream.state.drafts.where((d) => d.task === taskOf(2))[0]?.id)
  upstream.clear()
  const res = await call(gw, 'PATCH', `/api/drafts/${draft}/`, JSON_AUTH, '{"result":[]}')
  t.equal(res.status, 404)
  t.match(res.json(), { code: 'LG_ERR_PROJECT_NOT_FOUND', message: 'Not found' })
  t.same(lookups(), [`/api/drafts/${draft}/`, `/api/tasks/${taskOf(2)}/`])
  t.same(forwarded(), [])
  const line = await lastLine()
  t.match(line, { statusCode: 404, decision: { granted: false, reason: 'LG_ERR_PROJECT_NOT_FOUND', detail: /draft \d+ \(path draft\) is in project 2/ } })
})

t.test('a binding change applies to the very next request', async (t) => {
  const other = taskOf(2)
  t.equal((await call(gw, 'GET', `/api/tasks/${other}/`, AUTH)).status, 404)
  t.equal((await gw.cli(['user', 'set', ANNOTATOR.email, '--role', 'annotator', '--projects', '1,2'])).code, 0)
  t.equal((await call(gw, 'GET', `/api/tasks/${other}/`, AUTH)).status, 200, 'project 2 added')
  t.equal((await gw.cli(['user', 'set', ANNOTATOR.email, '--role', 'annotator', '--projects', 'all'])).code, 0)
  upstream.clear()
  t.equal((await call(gw, 'GET', `/api/tasks/${other}/`, AUTH)).status, 200, 'all projects')
  t.same(lookups(), [], 'a user bound to all projects needs no lookups')
  t.equal((await gw.cli(['user', 'set', ANNOTATOR.email, '--role', 'annotator', '--projects', '1'])).code, 0)
  t.equal((await call(gw, 'GET', `/api/tasks/${other}/`, AUTH)).status, 404, 'back to project 1')
  t.equal((await call(gw, 'HEAD', `/api/tasks/${other}/`, AUTH)).status, 404, 'HEAD is checked as GET')
})

t.test('the project list is narrowed to the binding upstream, and counts match', async (t) => {
  upstream.clear()
  const res = await call(gw, 'GET', '/api/projects/?page_size=10', AUTH)
  t.equal(res.status, 200)
  t.same(forwarded(), ['GET /api/projects/?page_size=10&ids=1'])
  t.match(res.json(), { count: 1, results: [{ id: 1 }] })
  t.equal((res.json().results as unknown[]).length, 1)
  const foreign = await call(gw, 'GET', '/api/projects/?ids=1,2', AUTH)
  t.equal(foreign.status, 404, 'a client\'s own ids are checked one by one')
  const tasks = await call(gw, 'GET', '/api/tasks/', AUTH)
  t.match(tasks.json(), { code: 'LG_ERR_PROJECT_REQUIRED', message: /\?project= or \?view=/ })
})

t.test('ids that are not ids, and too many of them, are refused before any lookup', async (t) => {
  const next = '/api/dm/actions/?id=next_task&project=1'
  for (const included of [[1.5], ['abc'], [{ id: 1 }], [-1], Array.from({ length: 501 }, (_, i) => i + 1)]) {
    upstream.clear()
    const res = await call(gw, 'POST', next, JSON_AUTH, JSON.stringify({ selectedItems: { all: false, included } }))
    t.equal(res.status, 400)
    t.match(res.json(), { code: 'LG_ERR_PROJECT_BAD_ID' })
    t.same(upstream.requests, [])
  }
  upstream.clear()
  const mixed = await call(gw, 'POST', next, JSON_AUTH, JSON.stringify({ selectedItems: { all: false, included: [taskOf(1), String(taskOf(2))] } }))
  t.equal(mixed.status, 404, 'one id of another project in a bulk list refuses the whole request')
  t.same(forwarded(), [])
  const nulls = await call(gw, 'POST', `/api/tasks/${taskOf(1)}/annotations/?project=1`, JSON_AUTH,
    JSON.stringify({ result: [], draft_id: null, parent_annotation: null }))
  t.equal(nulls.status, 201, 'null references are no ids')
})

t.test('a lookup that fails denies: Label Studio errors, answers without a project, Redis frozen', async (t) => {
  const fresh = annotationOf(2) + 1000
  upstream.state.annotations.insert({ id: fresh, result: [] })
  upstream.clear()
  const orphan = await call(gw, 'GET', `/api/annotations/${fresh}/`, AUTH)
  t.equal(orphan.status, 502)
  t.match(orphan.json(), { code: 'LG_ERR_UPSTREAM_LOOKUP_FAILED' })
  t.same(forwarded(), [])

  upstream.behaviour.failStatus = 500
  t.teardown(() => { upstream.behaviour.failStatus = null })
  upstream.clear()
  const failing = await call(gw, 'GET', `/api/tasks/${taskOf(1) + 1}/`, AUTH)
  t.equal(failing.status, 502)
  t.match(failing.json(), { code: 'LG_ERR_UPSTREAM_LOOKUP_FAILED' })
  t.same(forwarded(), [])
  upstream.behaviour.failStatus = null

  const missing = await call(gw, 'GET', '/api/tasks/99999/', AUTH)
  t.equal(missing.status, 404, 'an object Label Studio does not show is outside the binding')
  t.match(missing.json(), { code: 'LG_ERR_PROJECT_NOT_FOUND' })

  redis.pause()
  t.teardown(() => redis.resume())
  upstream.clear()
  const frozen = await call(gw, 'GET', `/api/tasks/${taskOf(1)}/`, AUTH)
  t.equal(frozen.status, 503)
  t.same(forwarded(), [], 'a cache that does not answer never lets a request through')
  redis.resume()
})

t.test('the command line refuses bindings that would not mean what they say', async (t) => {
  const missing = await gw.cli(['user', 'set', 'x@example.com', '--role', 'annotator'])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /role annotator is bound to projects: give --projects 1,2/)
  const pointless = await gw.cli(['user', 'set', 'x@example.com', '--role', 'manager', '--projects', '1'])
  t.equal(pointless.code, 2)
  t.match(pointless.stderr, /role manager reaches every project/)
  t.equal((await gw.cli(['user', 'set', 'x@example.com', '--role', 'manager', '--projects', 'all'])).code, 0)
})

t.test('a selection sent as JSON text is refused: Label Studio would parse the ids in it', async (t) => {
  upstream.clear()
  const res = await call(gw, 'POST', '/api/dm/actions/?id=next_task&project=1', JSON_AUTH,
    JSON.stringify({ selectedItems: JSON.stringify({ all: false, included: [taskOf(2)] }) }))
  t.equal(res.status, 400)
  t.match(res.json(), { code: 'LG_ERR_PROJECT_BAD_ID' })
  t.same(upstream.requests, [])
})

t.test('a task whose data the strict request parser would refuse is still placed', async (t) => {
  const id = taskOf(2) + 500
  upstream.state.tasks.insert({ id, project: 1, data: { tweet_id: 2 ** 60, deep: JSON.parse('['.repeat(150) + ']'.repeat(150)) } })
  upstream.clear()
  const res = await call(gw, 'GET', `/api/tasks/${id}/`, AUTH)
  t.not(res.status, 502, 'the lookup reads only what places the task')
  t.match((await lastLine()).project, { checks: [{ id, project: 1, how: 'lookup' }] })
})

t.test('a token with the default role and no binding reaches no project, lists included', async (t) => {
  const other = await startTestGateway(t, {
    store: 'embedded', upstreamUrl: upstream.url, config: { identity: { default_role: 'annotator' } }
  })
  const made = await other.cli(['token', 'create', '--user', 'nobody@example.com', '--upstream-token-stdin'], ANNOTATOR.token)
  t.equal(made.code, 0)
  upstream.clear()
  const res = await call(other, 'GET', '/api/projects/', { authorization: `Token ${made.stdout.trim()}` })
  t.equal(res.status, 404)
  t.same(upstream.requests, [], 'no empty ?ids= filter goes upstream')
})

t.test('project lists and objects on the command line are read strictly', async (t) => {
  const huge = await gw.cli(['user', 'set', 'y@example.com', '--role', 'annotator', '--projects', '9007199254740993'])
  t.equal(huge.code, 2, 'an id that a number cannot hold exactly')
  const admin = await gw.cli(['user', 'set', 'z@example.com', '--role', 'administrator'])
  t.match(admin.stdout, /projects every project \(the role is not bound to projects\)/)
  const listed = await gw.cli(['user', 'list', '--json'])
  const stored = (JSON.parse(listed.stdout) as Array<{ user: string, projects: unknown }>).find((u) => u.user === 'z@example.com')
  t.same(stored?.projects, [], 'stored without projects, should the role be bound later')
  const kind = await gw.cli(['policy', 'explain', '--role', 'annotator', 'GET', '/api/tasks/87/', '--projects', '1', '--object', 'tasks:87=1'])
  t.equal(kind.code, 2)
  t.match(kind.stderr, /the kind is one of task, annotation/)
  const zero = await gw.cli(['policy', 'explain', '--role', 'annotator', 'GET', '/api/tasks/87/', '--projects', '1', '--object', 'task:087=1'])
  t.match(zero.stdout, /allowed/, '087 is 87')
  t.equal((await gw.cli(['policy', 'explain', '--role', 'annotator', 'GET', '/api/tasks/87/', '--projects', '0'])).code, 2)
})
