import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startRedis } from '../support/redis.js'
import { call, startTestGateway, type TestGateway } from '../support/gateway.js'

// Redis stopped under a burst: authentication fails closed while the rate limits fall back to
// counting in the gateway's memory and still cap each client; one log line and the metrics say
// so, and once Redis answers again the counts go back to it.

const ANNOTATOR = DEFAULT_STANDIN_USERS[1] as StandInUser
const ANONYMOUS_MAX = 10

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const redis = await startRedis(t)
const gw = await startTestGateway(t, {
  store: 'redis',
  redis,
  upstreamUrl: upstream.url,
  config: {
    rate_limits: { window: '1m', max: 1000, anonymous_max: ANONYMOUS_MAX, auth_endpoints_max: 5 },
    server: { trusted_proxies: ['127.0.0.1'] }
  }
})

function from (address: string, headers: Record<string, string> = {}): Record<string, string> {
  return { 'x-forwarded-for': address, ...headers }
}

async function metric (gw: TestGateway, name: string): Promise<number | null> {
  const text = (await call(gw, 'GET', '/-/metrics')).text
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return match ? Number(match[1]) : null
}

function messages (gw: TestGateway, text: string): number {
  return gw.logs.entries().filter((e) => e.msg === text).length
}

const FALLBACK = 'rate limits count in this process: Redis does not answer'
const RECOVERED = 'rate limits count in Redis again'

t.test('with Redis stopped, a burst is refused closed for tokens and capped in memory for each address', async (t) => {
  const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)
  const auth = { authorization: `Token ${token}` }
  t.equal((await call(gw, 'GET', '/api/projects/1/', auth)).status, 200, 'the token works, and is held in memory')
  t.equal(await metric(gw, 'labelgate_rate_limit_fallback'), 0)

  await redis.stop()
  upstream.clear()
  const burst = await Promise.all([
    ...Array.from({ length: 20 }, () => call(gw, 'GET', '/api/projects/1/', from('198.51.100.1', auth))),
    ...Array.from({ length: 20 }, (_, i) => call(gw, 'GET', '/api/projects/1/', from('198.51.100.2', { 'x-api-key': `lg_x${i}` }))),
    ...Array.from({ length: 25 }, () => call(gw, 'GET', '/health/', from('203.0.113.1')))
  ])
  const tokens = burst.slice(0, 40)
  const anonymous = burst.slice(40)
  t.ok(tokens.every((r) => r.status === 503 && r.json().code === 'LG_ERR_TOKEN_STORE_UNAVAILABLE'),
    'every token, valid or not, gets 503: none can be checked')
  const statuses = anonymous.map((r) => r.status).sort()
  t.same(statuses, [...Array(ANONYMOUS_MAX).fill(200), ...Array(25 - ANONYMOUS_MAX).fill(429)],
    `one address gets ${ANONYMOUS_MAX} through, counted in memory`)
  t.ok(anonymous.filter((r) => r.status === 429).every((r) => r.json().code === 'LG_ERR_RATE_LIMITED'))
  t.equal(upstream.requests.length, ANONYMOUS_MAX, 'Label Studio saw only the anonymous requests let through')
  t.ok(upstream.requests.every((r) => r.url === '/health/' && r.headers.authorization === undefined))

  t.equal(messages(gw, FALLBACK), 1, 'one warning for the whole burst')
  const warning = gw.logs.entries().find((e) => e.msg === FALLBACK)
  t.match(warning, { level: 40, err: String })
  t.equal(await metric(gw, 'labelgate_rate_limit_fallback'), 1)
  t.equal(await metric(gw, 'labelgate_rate_limit_fallbacks_total'), 1)
  t.equal(await metric(gw, 'labelgate_rate_limited_total{bucket="address"}'), 25 - ANONYMOUS_MAX)
  t.equal((await call(gw, 'GET', '/health/', from('203.0.113.2'))).status, 200, 'another address has its own count')
})

t.test('once Redis answers again, the counts go back to it, with one log line', async (t) => {
  await redis.start()
  const restarted = Date.now()
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline && await metric(gw, 'labelgate_rate_limit_fallback') !== 0) {
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  t.equal(await metric(gw, 'labelgate_rate_limit_fallback'), 0)
  t.comment(`counting in Redis again ${Date.now() - restarted} ms after it restarted`)
  t.equal(messages(gw, RECOVERED), 1)
  t.match(gw.logs.entries().find((e) => e.msg === RECOVERED), { level: 30 })
  // Redis lost its counts with its process (no persistence): the address starts afresh there.
  const statuses = []
  for (let i = 0; i < ANONYMOUS_MAX + 1; i++) statuses.push((await call(gw, 'GET', '/health/', from('203.0.113.1'))).status)
  t.same(statuses, [...Array(ANONYMOUS_MAX).fill(200), 429])
  t.equal(messages(gw, FALLBACK), 1, 'no further fallback')
})
