import t, { type Test } from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway, type TestGateway } from '../support/gateway.js'
import { http, rawRequest } from '../support/raw.js'

// The security headers on every kind of response, over real TLS sockets: proxied answers, the
// gateway's own refusals and its internal routes; Label Studio's own values never replace them;
// media paths get a sandboxing policy whatever Label Studio sends.

const [ADMIN] = DEFAULT_STANDIN_USERS as [StandInUser]
const DEFAULT_CSP = "default-src 'self';script-src 'self' 'unsafe-inline' blob:;style-src 'self' 'unsafe-inline';" +
  "img-src 'self' data: blob:;media-src 'self' blob:;font-src 'self' data:;connect-src 'self';object-src 'none';" +
  "base-uri 'self';form-action 'self';frame-ancestors 'self'"
const MEDIA_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'"

// What a careless or compromised Label Studio might send to weaken the gateway's headers.
const HOSTILE = {
  'content-security-policy': 'default-src *',
  'content-security-policy-report-only': 'default-src *',
  'x-frame-options': 'ALLOWALL',
  'x-content-type-options': 'sniff',
  'referrer-policy': 'unsafe-url',
  'strict-transport-security': 'max-age=0',
  'cross-origin-resource-policy': 'cross-origin',
  'access-control-allow-origin': '*',
  'access-control-allow-credentials': 'true',
  'x-powered-by': 'Django'
}

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url })
const admin = await gw.issueToken(ADMIN.email, 'administrator', ADMIN.token)
const auth = { authorization: `Token ${admin}` }

function expectGatewayHeaders (t: Test, headers: Record<string, unknown>, csp = DEFAULT_CSP, label = ''): void {
  t.equal(headers['content-security-policy'], csp, `${label} CSP`)
  t.equal(headers['content-security-policy-report-only'], undefined, `${label} no report-only policy`)
  t.equal(headers['x-content-type-options'], 'nosniff', `${label} nosniff`)
  t.equal(headers['x-frame-options'], 'SAMEORIGIN', `${label} X-Frame-Options`)
  t.equal(headers['referrer-policy'], 'strict-origin-when-cross-origin', `${label} Referrer-Policy`)
  t.equal(headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', `${label} HSTS`)
  t.equal(headers['cross-origin-resource-policy'], 'same-origin', `${label} CORP`)
  t.equal(headers['x-powered-by'], undefined, `${label} no X-Powered-By`)
}

async function withHostileUpstream (t: Test): Promise<void> {
  Object.assign(upstream.behaviour.headers, HOSTILE)
  t.teardown(() => { upstream.behaviour.headers = {} })
}

t.test('proxied, refused and internal responses all carry the gateway\'s headers', async (t) => {
  const cases: Array<[string, Promise<{ status: number, headers: Record<string, unknown> }>, number]> = [
    ['proxied', call(gw, 'GET', '/api/projects/1/', auth), 200],
    ['anonymous, proxied', call(gw, 'GET', '/health/'), 200],
    ['internal', call(gw, 'GET', '/-/healthz'), 200],
    ['refused by the edge', call(gw, 'GET', '/api/projects/?_method=DELETE', auth), 400],
    ['refused for no credential', call(gw, 'GET', '/api/projects/1/'), 401],
    ['refused by the policy', call(gw, 'GET', '/admin/', auth), 403],
    ['refused preflight', call(gw, 'OPTIONS', '/api/projects/', { origin: 'https://x.example', 'access-control-request-method': 'GET' }), 403]
  ]
  for (const [label, pending, status] of cases) {
    const res = await pending
    t.equal(res.status, status, label)
    expectGatewayHeaders(t, res.headers, DEFAULT_CSP, label)
  }
})

t.test('a target the router cannot decode, refused without hooks, gets the same headers', async (t) => {
  const res = await rawRequest(gw.gateway.port, http('GET /api/projects/%zz/ HTTP/1.1'), { ca: gw.ca })
  t.equal(res.status, 400)
  t.equal(JSON.parse(res.body).code, 'LG_ERR_REQUEST_NOT_CANONICAL')
  expectGatewayHeaders(t, res.headers)
})

t.test('Label Studio cannot weaken or replace the gateway\'s headers', async (t) => {
  await withHostileUpstream(t)
  const res = await call(gw, 'GET', '/api/projects/1/', auth)
  t.equal(res.status, 200)
  expectGatewayHeaders(t, res.headers)
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.equal(res.headers['access-control-allow-credentials'], undefined)
  const filtered = await call(gw, 'GET', '/api/projects/?page=1', auth)
  t.equal(filtered.status, 200)
  expectGatewayHeaders(t, filtered.headers, DEFAULT_CSP, 'filtered response')
})

t.test('media paths get the sandboxing policy, whatever Label Studio sends', async (t) => {
  await withHostileUpstream(t)
  const res = await call(gw, 'GET', '/data/upload/1/page.html', auth)
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.text, /<script>/, 'the body passes unchanged: the browser is what the policy restrains')
  expectGatewayHeaders(t, res.headers, MEDIA_CSP)
  for (const path of [
    '/data/upload/1/drawing.svg', '/data/avatars/a.svg', '/data/local-files/?d=x.html', '/data/local-files',
    '/storage-data/uploaded/?filepath=upload/1/x.html', '/tasks/1/resolve/?fileuri=czM6Ly9iL2suaHRtbA',
    '/tasks/1/presign/?fileuri=czM6Ly9iL2suaHRtbA', '/projects/1/resolve/?fileuri=czM6Ly9iL2suaHRtbA',
    '/projects/1/presign?fileuri=czM6Ly9iL2suaHRtbA'
  ]) {
    const media = await call(gw, 'GET', path, auth)
    t.equal(media.headers['content-security-policy'], MEDIA_CSP, `${path} (${media.status})`)
    t.equal(media.headers['x-content-type-options'], 'nosniff')
  }
  const other = await call(gw, 'GET', '/api/tasks/1/', auth)
  t.equal(other.headers['content-security-policy'], DEFAULT_CSP, 'other paths keep the UI policy')
})

async function gatewayWith (t: Test, headers: Record<string, unknown>): Promise<TestGateway> {
  return await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url, config: { headers } })
}

t.test('report-only, frame, referrer and directive settings', async (t) => {
  const other = await gatewayWith(t, {
    frame_options: 'deny',
    referrer_policy: 'no-referrer',
    csp: {
      report_only: true,
      directives: { 'default-src': ["'self'"], 'img-src': ["'self'", 'https://bucket.example'], 'report-uri': ['/csp'] }
    }
  })
  const res = await call(other, 'GET', '/health/')
  t.equal(res.headers['content-security-policy'], undefined, 'report-only: nothing enforced')
  t.equal(res.headers['content-security-policy-report-only'],
    "default-src 'self';img-src 'self' https://bucket.example;report-uri /csp;frame-ancestors 'none'")
  t.equal(res.headers['x-frame-options'], 'DENY')
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  const media = await call(other, 'GET', '/data/upload/1/page.html')
  t.equal(media.status, 401)
  t.equal(media.headers['content-security-policy'],
    "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'", 'media policy enforced anyway')
  t.equal(media.headers['content-security-policy-report-only'], undefined)
})
