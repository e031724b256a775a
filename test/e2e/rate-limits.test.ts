import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { Redis } from 'ioredis'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startRedis, type TestRedis } from '../support/redis.js'
import { call, startTestGateway } from '../support/gateway.js'

// Rate limits end to end: two gateways on one real redis-server share every count, the loopback
// peer is a trusted proxy so that X-Forwarded-For gives each test a client address of its own,
// and a third gateway on the embedded store counts in memory and believes no proxy.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const LIMITS = { window: '1m', max: 5, anonymous_max: 4, auth_endpoints_max: 2 }

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const redis = await startRedis(t)
const shared = { store: 'redis' as const, redis, upstreamUrl: upstream.url, encryptionKey: randomBytes(32).toString('hex') }
const config = { rate_limits: LIMITS, server: { trusted_proxies: ['127.0.0.1'] } }
const a = await startTestGateway(t, { ...shared, config })
const b = await startTestGateway(t, { ...shared, config })

function from (address: string, headers: Record<string, string> = {}): Record<string, string> {
  return { 'x-forwarded-for': address, ...headers }
}

/** Redis's count of reads that found no key: a token lookup of an unknown token adds one. */
async function keyspaceMisses (redis: TestRedis): Promise<number> {
  const client = new Redis(redis.url, {
    username: redis.username,
    password: redis.password,
    tls: { ca: readFileSync(redis.ca), cert: readFileSync(redis.cert), key: readFileSync(redis.key) }
  })
  try {
    const stats = await client.info('stats')
    return Number(/keyspace_misses:(\d+)/.exec(stats)?.[1])
  } finally {
    client.disconnect()
  }
}

t.test('a user\'s requests are counted once across two replicas on the same Redis', async (t) => {
  const token = await a.issueToken('shared@example.com', 'annotator', ANNOTATOR.token)
  const auth = { authorization: `Token ${token}` }
  upstream.clear()
  const statuses = []
  for (const gw of [a, b, a, b, a]) statuses.push((await call(gw, 'GET', '/api/projects/1/', auth)).status)
  t.same(statuses, [200, 200, 200, 200, 200], 'five requests, the maximum, pass on either replica')
  for (const gw of [b, a]) {
    const res = await call(gw, 'GET', '/api/projects/1/', auth)
    t.equal(res.status, 429, 'the sixth and seventh are refused on both')
    t.equal(res.json().code, 'LG_ERR_RATE_LIMITED')
  }
  t.equal(upstream.requests.length, 5, 'Label Studio saw only the five')
  const other = await a.issueToken('other@example.com', 'annotator', ANNOTATOR.token)
  t.equal((await call(b, 'GET', '/api/projects/1/', { authorization: `Token ${other}` })).status, 200,
    'another user from the same address is counted on its own')
})

t.test('a 429 has Retry-After, the rate-limit headers, the gateway\'s error body and an access line', async (t) => {
  const token = await a.issueToken('headers@example.com', 'annotator', ANNOTATOR.token)
  const auth = { authorization: `Token ${token}` }
  const first = await call(a, 'GET', '/api/projects/1/', auth)
  t.equal(first.status, 200)
  t.match(first.headers, { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '4', 'x-ratelimit-reset': /^\d+$/ })
  for (let i = 0; i < 4; i++) await call(b, 'GET', '/api/projects/1/', auth)
  const before = a.logs.accessLines().length
  const res = await call(a, 'GET', '/api/projects/1/', auth)
  t.equal(res.status, 429)
  t.match(res.json(), {
    statusCode: 429, error: 'Too Many Requests', code: 'LG_ERR_RATE_LIMITED', message: /retry in \d+ seconds/, requestId: String
  })
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After is within the window (${retryAfter})`)
  t.match(res.headers, { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(retryAfter) })
  t.equal(res.headers['x-request-id'], res.json().requestId)
  const [line] = (await a.waitForAccessLines(before + 1)).slice(before)
  t.match(line, {
    statusCode: 429,
    user: 'headers@example.com',
    role: 'annotator',
    decision: { granted: false, reason: 'LG_ERR_RATE_LIMITED', detail: 'user-bucket' }
  })
})

t.test('anonymous requests are counted per client address', async (t) => {
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await call(i % 2 ? a : b, 'GET', '/health/', from('203.0.113.7'))).status)
  t.same(statuses, [200, 200, 200, 200, 429])
  const before = a.logs.accessLines().length
  t.equal((await call(a, 'GET', '/health/', from('203.0.113.7'))).status, 429)
  t.match((await a.waitForAccessLines(before + 1))[before], {
    user: null, decision: { reason: 'LG_ERR_RATE_LIMITED', detail: 'address-bucket' }
  })
  t.equal((await call(a, 'GET', '/health/', from('203.0.113.8'))).status, 200, 'another address has its own count')
  const v6 = []
  for (const address of ['2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4', '2001:db8::5']) {
    v6.push((await call(a, 'GET', '/health/', from(address))).status)
  }
  t.same(v6, [200, 200, 200, 200, 429], 'IPv6 clients are counted by their /64')
})

t.test('invented tokens count against their address, and a spent address is refused before the store', async (t) => {
  const statuses = []
  for (let i = 0; i < 4; i++) {
    statuses.push((await call(a, 'GET', '/api/projects/1/', from('198.51.100.9', { authorization: `Token lg_invented${i}` }))).status)
  }
  t.same(statuses, [401, 401, 401, 401], 'each failure is answered 401, and counted')
  const misses = await keyspaceMisses(redis)
  for (let i = 0; i < 6; i++) {
    const res = await call(i % 2 ? a : b, 'GET', '/api/projects/1/', from('198.51.100.9', { 'x-api-key': `lg_more${i}` }))
    t.equal(res.status, 429)
  }
  t.equal(await keyspaceMisses(redis), misses, 'no token was looked up for the refused requests')
  const malformed = await call(a, 'GET', '/api/projects/1/', from('198.51.100.9', { authorization: 'Basic eDp5' }))
  t.equal(malformed.status, 429, 'a malformed credential from the address is refused too')
  t.equal((await call(a, 'GET', '/health/', from('198.51.100.9'))).status, 429, 'and so is anonymous traffic')
  const control = await call(a, 'GET', '/api/projects/1/', from('198.51.100.10', { authorization: 'Token lg_fresh' }))
  t.equal(control.status, 401)
  t.ok(await keyspaceMisses(redis) > misses, 'a lookup from another address does reach the store')
  const valid = await a.issueToken('behind-nat@example.com', 'annotator', ANNOTATOR.token)
  const first = await call(a, 'GET', '/api/projects/1/', from('198.51.100.10', { authorization: `Token ${valid}` }))
  t.equal(first.status, 200)
  const again = await call(a, 'GET', '/api/projects/1/', from('198.51.100.9', { authorization: `Token ${valid}` }))
  t.equal(again.status, 200, 'a token the replica holds in memory is not held back by its address')
})

t.test('login, signup and token endpoints have a stricter bucket', async (t) => {
  const login = []
  for (let i = 0; i < 3; i++) login.push((await call(a, 'GET', '/user/login/', from('192.0.2.10'))).status)
  t.same(login, [200, 200, 429], 'anonymous: per address')
  const before = a.logs.accessLines().length
  t.equal((await call(a, 'GET', '/user/signup/', from('192.0.2.10'))).status, 429, 'login and signup share it')
  t.equal((await call(a, 'GET', '/health/', from('192.0.2.11'))).status, 200)
  const registered = await a.cli(['token', 'register', '--user', ADMIN.email], ADMIN.token)
  t.equal(registered.code, 0, registered.stderr)
  t.equal((await a.cli(['user', 'set', ADMIN.email, '--role', 'administrator'])).code, 0)
  const admin = { authorization: `Token ${ADMIN.token}` }
  upstream.clear()
  const tokens = []
  for (const path of ['/api/current-user/token', '/api/token/', '/api/current-user/token']) {
    tokens.push((await call(b, 'GET', path, admin)).status)
  }
  t.not(tokens[0], 429)
  t.not(tokens[1], 429)
  t.equal(tokens[2], 429, 'authenticated: per user, across the token endpoints')
  t.equal(upstream.requests.length, 2)
  t.equal((await call(a, 'GET', '/api/projects/1/', admin)).status, 200, 'other routes still pass')
  t.match((await a.waitForAccessLines(before + 1))[before], { decision: { detail: 'auth-endpoint-bucket' } })
})

t.test('the metrics count refusals by bucket and show that Redis counts', async (t) => {
  const res = await call(a, 'GET', '/-/metrics')
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.text, /^labelgate_rate_limit_fallback 0$/m)
  t.match(res.text, /^labelgate_rate_limit_fallbacks_total 0$/m)
  for (const bucket of ['user', 'address', 'auth-endpoint']) {
    t.match(res.text, new RegExp(`^labelgate_rate_limited_total\\{bucket="${bucket}"\\} [1-9]\\d*$`, 'm'))
  }
  t.equal((await call(a, 'GET', '/-/metrics', from('203.0.113.7'))).status, 200, 'never limited itself')
})

t.test('on the embedded store, counts are kept in memory, and X-Forwarded-For is believed only from trusted proxies', async (t) => {
  const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url, config: { rate_limits: LIMITS } })
  const token = await gw.issueToken('embedded@example.com', 'annotator', ANNOTATOR.token)
  const user = []
  for (let i = 0; i < 6; i++) user.push((await call(gw, 'GET', '/api/projects/1/', { authorization: `Token ${token}` })).status)
  t.same(user, [200, 200, 200, 200, 200, 429])
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await call(gw, 'GET', '/health/', from(`203.0.113.${20 + i}`))).status)
  t.same(statuses, [200, 200, 200, 200, 429], 'every request counts against the peer, 127.0.0.1')
})

t.test('with rate_limits.enabled false nothing is counted', async (t) => {
  const gw = await startTestGateway(t, {
    store: 'embedded', upstreamUrl: upstream.url, config: { rate_limits: { ...LIMITS, enabled: false } }
  })
  const statuses = new Set<number>()
  for (let i = 0; i < 8; i++) {
    const res = await call(gw, 'GET', '/user/login/')
    statuses.add(res.status)
    t.notOk(res.headers['x-ratelimit-limit'])
  }
  t.same([...statuses], [200])
})
