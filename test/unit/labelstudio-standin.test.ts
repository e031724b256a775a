import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { Client, request } from 'undici'
import type { Dispatcher } from 'undici'
import { parse } from 'yaml'
import { DEFAULT_REFERENCE_DIR } from '../support/labelstudio-standin-data.js'
import { DEFAULT_STANDIN_USERS, standInRoutes, startLabelStudioStandIn } from '../support/labelstudio-standin.js'
import type { StandIn, StandInUser } from '../support/labelstudio-standin.js'

interface HasTeardown { teardown: (fn: () => Promise<void>) => void }

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const UNKNOWN_TOKEN = '0123456789abcdef0123456789abcdef01234567'

interface Answer {
  status: number
  headers: Dispatcher.ResponseData['headers']
  text: string
  json: unknown
}

interface CallOptions {
  method?: Dispatcher.HttpMethod
  token?: string | null
  headers?: Record<string, string>
  body?: string
}

async function startFor (t: HasTeardown): Promise<StandIn> {
  const standIn = await startLabelStudioStandIn()
  t.teardown(() => standIn.close())
  return standIn
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

async function call (standIn: StandIn, path: string, options: CallOptions = {}): Promise<Answer> {
  const token = options.token === undefined ? ADMIN.token : options.token
  const headers: Record<string, string> = { ...options.headers }
  if (token !== null) headers.authorization = `Token ${token}`
  if (options.body !== undefined) headers['content-type'] ??= 'application/json'
  const body = options.body === undefined ? {} : { body: options.body }
  const res = await request(`${standIn.url}${path}`, { method: options.method ?? 'GET', headers, ...body })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: parseJson(text) }
}

function field (value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined
}

t.test('authenticates like Label Studio', async (t) => {
  const standIn = await startFor(t)
  const missing = await call(standIn, '/api/projects/', { token: null })
  t.equal(missing.status, 401)
  t.same(missing.json, { detail: 'Authentication credentials were not provided.' })
  t.equal(missing.headers['content-type'], 'application/json')
  t.equal(missing.headers['www-authenticate'], 'Token')

  const unknown = await call(standIn, '/api/projects/', { token: UNKNOWN_TOKEN })
  t.equal(unknown.status, 401)
  t.same(unknown.json, { detail: 'Invalid token.' })

  const bearer = await call(standIn, '/api/projects/', {
    token: null,
    headers: { authorization: `Bearer ${ADMIN.token}` }
  })
  t.same(bearer.json, { detail: 'Authentication credentials were not provided.' }, 'only the Token keyword counts')

  const lower = await call(standIn, '/api/current-user/whoami', {
    token: null,
    headers: { authorization: `token ${ANNOTATOR.token}` }
  })
  t.equal(lower.status, 200, 'the keyword is case-insensitive')
  t.match(lower.json, {
    id: 2,
    email: 'annotator@example.com',
    username: 'annotator',
    first_name: String,
    last_name: String,
    active_organization: 1,
    permissions: Array
  })
  t.ok((field(lower.json, 'permissions') as unknown[]).includes('annotations.create'))
  t.equal(standIn.requests.at(-1)?.user?.id, 2, 'the request is recorded with its user')

  for (const path of ['/health/', '/health']) {
    const health = await call(standIn, path, { token: null })
    t.equal(health.status, 200, `${path} needs no credential`)
    t.same(health.json, { status: 'UP' })
  }
  const version = await call(standIn, '/api/version', { token: null })
  t.equal(version.status, 200)
  t.match(version.json, { release: String, edition: 'Community' })
})

t.test('paginates projects like Django REST framework', async (t) => {
  const standIn = await startFor(t)
  const first = await call(standIn, '/api/projects/?page_size=1')
  t.equal(first.status, 200)
  t.match(first.json, { count: 2, previous: null, next: `${standIn.url}/api/projects/?page=2&page_size=1` })
  t.same((field(first.json, 'results') as unknown[]).map((p) => field(p, 'id')), [1])

  const second = await call(standIn, '/api/projects/?page_size=1&page=2')
  t.match(second.json, { count: 2, next: null, previous: `${standIn.url}/api/projects/?page_size=1` })
  t.same((field(second.json, 'results') as unknown[]).map((p) => field(p, 'id')), [2])

  const proxied = await call(standIn, '/api/projects/?page_size=1', { headers: { host: 'ls.internal:8080' } })
  t.equal(field(proxied.json, 'next'), 'http://ls.internal:8080/api/projects/?page=2&page_size=1', 'links use Host')

  const all = await call(standIn, '/api/projects/')
  t.match(all.json, { count: 2, next: null, previous: null })
  t.equal((field(all.json, 'results') as unknown[]).length, 2)
  t.same((await call(standIn, '/api/projects/?page=3&page_size=1')).json, { detail: 'Invalid page.' })

  const tasks = await call(standIn, '/api/tasks/?project=1')
  t.match(tasks.json, { total: 3, total_annotations: 3, total_predictions: 1 })
  t.same((field(tasks.json, 'tasks') as unknown[]).map((task) => field(task, 'id')), [1, 2, 3])
})

t.test('records annotation creation with the raw target and body', async (t) => {
  const standIn = await startFor(t)
  await call(standIn, '/health/')
  standIn.clear()
  t.equal(standIn.requests.length, 0, 'clear() empties the record')

  const result = [{
    id: 'r1',
    type: 'rectanglelabels',
    from_name: 'label',
    to_name: 'image',
    value: { x: 1, y: 2, width: 3, height: 4, rectanglelabels: ['white'] }
  }]
  const payload = `{ "result": ${JSON.stringify(result)},  "was_cancelled": false }`
  const target = '/api/tasks/3/annotations/?source=%7bgate%7D&a=1;b=2&a=%41'
  const created = await call(standIn, target, { method: 'POST', token: ANNOTATOR.token, body: payload })
  t.equal(created.status, 201)
  t.match(created.json, { id: Number, task: 3, project: 1, completed_by: 2, result, created_at: String })

  t.equal(standIn.requests.length, 1)
  const recorded = standIn.requests[0]
  t.equal(recorded?.method, 'POST')
  t.equal(recorded?.url, target)
  t.ok(recorded?.body.equals(Buffer.from(payload)), 'the body is recorded byte for byte')
  t.equal(recorded?.user?.email, 'annotator@example.com')
  t.equal(recorded?.headers['content-type'], 'application/json')
  t.ok(recorded?.rawHeaders.includes(`Token ${ANNOTATOR.token}`))

  const id = String(field(created.json, 'id'))
  const stored = await call(standIn, `/api/annotations/${id}/`)
  t.match(stored.json, { id: Number(id), result, completed_by: 2 })
})

t.test('records a target that URL parsing would rewrite', async (t) => {
  const standIn = await startFor(t)
  const client = new Client(standIn.url)
  t.teardown(() => client.close())
  const path = '/api/tasks/1/annotations/?q="<b>"&next=/./x/../y'
  const res = await client.request({ method: 'GET', path, headers: { authorization: `Token ${ADMIN.token}` } })
  await res.body.text()
  t.equal(res.statusCode, 200)
  t.equal(standIn.requests[0]?.url, path)
})

t.test('re-dispatches slash-less paths to path + "/"', async (t) => {
  const standIn = await startFor(t)
  const slashless = await call(standIn, '/api/projects/1')
  t.equal(slashless.status, 200)
  t.same(slashless.json, (await call(standIn, '/api/projects/1/')).json)
  t.equal(standIn.requests[0]?.url, '/api/projects/1', 'the record keeps the target as sent')

  const post = await call(standIn, '/api/tasks/1/annotations', { method: 'POST', body: '{"result": []}' })
  t.equal(post.status, 201, 'the method and body survive the re-dispatch')
  t.equal(field(post.json, 'task'), 1)

  t.equal((await call(standIn, '/api/tasks/1/drafts')).status, 200)
  t.equal((await call(standIn, '/api/tasks/1/drafts/')).status, 404, 'an extra slash is not removed')
})

t.test('answers 404, 405 and 400 like Label Studio', async (t) => {
  const standIn = await startFor(t)
  const unknown = await call(standIn, '/api/not-a-route/', { token: null })
  t.equal(unknown.status, 404)
  t.same(unknown.json, { detail: 'Not found.' })
  t.equal(unknown.headers['content-type'], 'application/json')
  t.same((await call(standIn, '/api/projects/999/')).json, { detail: 'Not found.' })
  t.equal((await call(standIn, '/api/projects/999/')).status, 404)

  const wrong = await call(standIn, '/api/projects/', { method: 'DELETE' })
  t.equal(wrong.status, 405)
  t.same(wrong.json, { detail: 'Method "DELETE" not allowed.' })
  t.match(wrong.headers.allow, /GET, POST/)
  t.equal((await call(standIn, '/api/projects/', { method: 'DELETE', token: null })).status, 401, 'auth comes first')

  const broken = await call(standIn, '/api/tasks/1/annotations/', { method: 'POST', body: '{"result": [' })
  t.equal(broken.status, 400)
  t.same(broken.json, { detail: 'JSON parse error' })
})

t.test('serves the other routes with stored state', async (t) => {
  const standIn = await startFor(t)
  t.equal(field((await call(standIn, '/api/projects/1/next/')).json, 'id'), 3, 'next is the unlabelled task')
  const exported = await call(standIn, '/api/projects/2/export?exportType=JSON')
  t.match(exported.headers['content-disposition'], /^attachment; filename="project-2-/)
  t.match(exported.json, [{ id: 87, annotations: [{ result: [{ type: 'polygonlabels' }] }] }, { id: 88 }])

  const imported = await call(standIn, '/api/projects/2/import', {
    method: 'POST',
    body: JSON.stringify([{ data: { image: '/a.png' }, annotations: [{ result: [] }] }, { image: '/b.png' }])
  })
  t.equal(imported.status, 201)
  t.match(imported.json, { task_count: 2, annotation_count: 1, predictions_count: 0 })
  t.equal(field((await call(standIn, '/api/tasks/?project=2')).json, 'total'), 4)

  const draft = await call(standIn, '/api/tasks/3/drafts', { method: 'POST', body: '{"result": [], "lead_time": 2}' })
  t.match(draft.json, { id: Number, task: 3, user: 1, lead_time: 2 })
  const draftPath = `/api/drafts/${String(field(draft.json, 'id'))}/`
  t.equal((await call(standIn, draftPath, { method: 'DELETE' })).status, 204)
  t.equal((await call(standIn, draftPath)).status, 404)

  t.match((await call(standIn, '/api/predictions/?task=3')).json, [{ task: 3, model_version: 'yolo-v8' }])
  const users = await call(standIn, '/api/users/')
  t.same((users.json as unknown[]).map((u) => field(u, 'email')), ['admin@example.com', 'annotator@example.com'])
  const login = await call(standIn, '/user/login/', { token: null })
  t.match(login.headers['content-type'], /^text\/html/)
  t.match(login.text, /<form/)
})

t.test('delayMs holds the answer back', async (t) => {
  const standIn = await startFor(t)
  standIn.behaviour.delayMs = 250
  const started = performance.now()
  const res = await call(standIn, '/health/')
  t.equal(res.status, 200)
  t.ok(performance.now() - started >= 245, 'the answer waited for the delay')
})

t.test('reset drops the connection without answering', async (t) => {
  const standIn = await startFor(t)
  standIn.behaviour.reset = true
  const error: unknown = await call(standIn, '/api/projects/').then(() => null, (e: unknown) => e)
  t.match(field(error, 'code'), /^(ECONNRESET|UND_ERR_SOCKET)$/)
  t.equal(standIn.requests.length, 1, 'the request was still recorded')
})

t.test('failStatus answers every request with that status', async (t) => {
  const standIn = await startFor(t)
  standIn.behaviour.failStatus = 503
  for (const path of ['/health/', '/api/projects/']) {
    const res = await call(standIn, path, { token: null })
    t.equal(res.status, 503)
    t.same(res.json, { detail: 'Service Unavailable' })
    t.equal(res.headers['content-type'], 'application/json')
  }
  standIn.behaviour.failStatus = null
  t.equal((await call(standIn, '/health/')).status, 200)
})

t.test('close() ends open requests and stops listening', async (t) => {
  const standIn = await startLabelStudioStandIn({ behaviour: { delayMs: 10_000 } })
  const pending = call(standIn, '/health/').then(() => null, (e: unknown) => e)
  while (standIn.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const started = performance.now()
  await standIn.close()
  t.ok(performance.now() - started < 1000, 'close does not wait for the delayed answer')
  t.type(await pending, Error)
  const refused: unknown = await call(standIn, '/health/').then(() => null, (e: unknown) => e)
  t.equal(field(refused, 'code'), 'ECONNREFUSED')
})

t.test('close() destroys a connection stuck mid-body', async (t) => {
  const standIn = await startLabelStudioStandIn()
  const socket = connect(standIn.port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  const ended = new Promise<string>((resolve) => socket.on('close', () => resolve('socket closed')))
  socket.write('POST /api/projects/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"tit')
  while (standIn.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 2000).unref())
  t.equal(await Promise.race([standIn.close().then(() => 'closed'), timeout]), 'closed')
  t.equal(await Promise.race([ended, timeout]), 'socket closed')
})

t.test('every route is a Label Studio route', async (t) => {
  const doc: unknown = parse(readFileSync(join(DEFAULT_REFERENCE_DIR, 'routes.yaml'), 'utf8'))
  const listed = field(doc, 'routes') as Array<{ path: string, methods: string[] }>
  for (const { path, methods } of standInRoutes()) {
    const known = listed.find((r) => r.path === path)
    t.ok(known, `${path} is in routes.yaml`)
    t.same(methods.filter((m) => !(known?.methods ?? []).includes(m)), [], `${path} methods are Label Studio's`)
  }
})

t.test('a missing reference file is a clear error', async (t) => {
  await t.rejects(startLabelStudioStandIn({ dataDir: '/nonexistent/labelstudio' }),
    /reference file \/nonexistent\/labelstudio\/.* is missing/)
})
