import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startRedis } from '../support/redis.js'
import { call, startTestGateway } from '../support/gateway.js'
import { http, rawRequest } from '../support/raw.js'

// Every request gets exactly one access line with a decision, and no credential ever reaches a log
// line: neither a gateway token, nor a Label Studio token, nor a cookie, nor an API key.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const redis = await startRedis(t)
const gw = await startTestGateway(t, { store: 'redis', redis, upstreamUrl: upstream.url })
const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)
const SECRETS = [token, ANNOTATOR.token, ADMIN.token, 'sessionid=s3cr3t-cookie', 'Basic c2VjcmV0OnNlY3JldA==', redis.password]

t.test('an access line carries the decision, the rule and the upstream timing', async (t) => {
  const before = gw.logs.accessLines().length
  await call(gw, 'GET', '/api/projects/1/', { authorization: `Token ${token}` })
  await call(gw, 'DELETE', '/api/projects/1/', { authorization: `Token ${token}` })
  const lines = (await gw.waitForAccessLines(before + 2)).slice(before)
  t.match(lines[0], {
    level: 30,
    reqId: String,
    method: 'GET',
    route: '/api/projects/{project:int}/',
    statusCode: 200,
    user: ANNOTATOR.email,
    role: 'annotator',
    decision: { granted: true, reason: 'ok' },
    rule: { id: 'projects-read', file: /annotator\.yaml$/, line: Number },
    upstream: { statusCode: 200, ms: Number }
  })
  t.match(lines[1], {
    method: 'DELETE',
    route: '/api/projects/{project:int}/',
    statusCode: 403,
    role: 'annotator',
    decision: { granted: false, reason: 'LG_ERR_POLICY_DENIED', detail: 'method-not-allowed' },
    rule: null,
    upstream: null
  })
  t.notOk('url' in (lines[0] ?? {}), 'no raw URL in the access line')
})

t.test('1,000 requests with a cached token: one decision line each, no credential anywhere', async (t) => {
  const before = gw.logs.accessLines().length
  const statuses = new Map<number, number>()
  const shapes = [
    () => call(gw, 'GET', '/api/projects/?page=1&page_size=10', { authorization: `Token ${token}`, cookie: 'sessionid=s3cr3t-cookie' }),
    () => call(gw, 'POST', '/api/tasks/1/annotations/', { authorization: `Token ${token}`, 'content-type': 'application/json' }, '{"result":[]}'),
    () => call(gw, 'DELETE', '/api/projects/1/', { 'x-api-key': token, 'proxy-authorization': 'Basic c2VjcmV0OnNlY3JldA==' }),
    () => call(gw, 'GET', '/api/projects/1/', { authorization: `Token ${ADMIN.token}` }),
    () => call(gw, 'GET', '/api/projects/1/', { authorization: 'Token ' + token.slice(0, -1) + 'x' })
  ]
  for (let i = 0; i < 1000; i += 10) {
    const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => (shapes[(i + j) % shapes.length] as () => ReturnType<typeof call>)()))
    for (const res of batch) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
  }
  const lines = (await gw.waitForAccessLines(before + 1000)).slice(before)
  t.equal(lines.length, 1000, 'one access line per request')
  t.ok(lines.every((l) => typeof (l.decision as { granted?: unknown })?.granted === 'boolean'), 'each line has a decision')
  t.same(Object.fromEntries(statuses), { 200: 200, 201: 200, 403: 200, 401: 400 })
  const text = gw.logs.lines.join('\n')
  for (const secret of SECRETS) t.notOk(text.includes(secret), `no ${secret.slice(0, 6)}… in the logs`)
})

t.test('requests the parser or router refuse are logged too, without their target', async (t) => {
  const before = gw.logs.lines.length
  await rawRequest(gw.gateway.port, http('GET /api/x%zz/?token=' + token + ' HTTP/1.1', [`Authorization: Token ${token}`]), { ca: gw.ca })
  await rawRequest(gw.gateway.port, http('GET localhost:443 HTTP/1.1', [`Authorization: Token ${token}`]), { ca: gw.ca })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const lines = gw.logs.lines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')
  t.equal(lines.length, 2)
  t.match(lines, [{ decision: { granted: false, reason: 'LG_ERR_REQUEST_NOT_CANONICAL' } }, { decision: { granted: false, reason: 'LG_ERR_REQUEST_MALFORMED' } }])
  t.notOk(gw.logs.lines.join('\n').includes(token))
})

t.test('a request logged through Fastify\'s own serializers is redacted', async (t) => {
  const before = gw.logs.lines.length
  gw.gateway.app.log.info({ req: { method: 'GET', url: '/x?token=abc', headers: { authorization: `Token ${token}` } }, headers: { 'x-api-key': token } }, 'probe')
  const line = gw.logs.lines.slice(before).join('\n')
  t.match(line, /probe/)
  t.notOk(line.includes(token))
  t.notOk(line.includes('token=abc'), 'the query string is not serialised')
})
