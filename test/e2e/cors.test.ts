import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'

// CORS over real TLS sockets, against the Label Studio stand-in (which, like Label Studio, answers
// every origin with Access-Control-Allow-Origin: *): only the gateway's allowlist speaks, a
// preflight is answered before authentication, and nothing of a preflight reaches Label Studio.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const APP = 'https://app.example.com'
const DEV = 'http://localhost:3000'
const EVIL = 'https://evil.example.com'

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, {
  store: 'embedded',
  upstreamUrl: upstream.url,
  config: {
    // Written as an operator might: upper case, default port spelled out, a trailing slash.
    cors: { origins: ['HTTPS://App.Example.COM:443', 'http://localhost:3000/'], credentials: true, max_age: '2m' }
  }
})
const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)

function preflight (origin: string, method = 'GET', headers = 'authorization'): Record<string, string> {
  return { origin, 'access-control-request-method': method, 'access-control-request-headers': headers }
}

function corsHeaders (headers: Record<string, unknown>): string[] {
  return Object.keys(headers).filter((name) => name.startsWith('access-control-'))
}

t.test('a listed origin\'s preflight is answered by the gateway, without a credential, and never forwarded', async (t) => {
  upstream.clear()
  const before = gw.logs.accessLines().length
  for (const origin of [APP, DEV]) {
    const res = await call(gw, 'OPTIONS', '/api/projects/1/', preflight(origin, 'PATCH', 'authorization,content-type'))
    t.equal(res.status, 204)
    t.equal(res.text, '')
    t.equal(res.headers['access-control-allow-origin'], origin)
    t.equal(res.headers['access-control-allow-credentials'], 'true')
    t.equal(res.headers['access-control-allow-methods'], 'DELETE, GET, HEAD, PATCH, POST, PUT')
    t.equal(res.headers['access-control-allow-headers'], 'authorization, content-type')
    t.equal(res.headers['access-control-max-age'], '120')
    t.match(res.headers.vary, /\bOrigin\b/)
  }
  t.equal(upstream.requests.length, 0, 'Label Studio saw nothing')
  const lines = (await gw.waitForAccessLines(before + 2)).slice(before)
  t.match(lines[0], { method: 'OPTIONS', statusCode: 204, decision: { granted: true, reason: 'ok', detail: 'cors-preflight' } })
})

t.test('an unlisted origin\'s preflight gets 403 with the gateway\'s error and no Access-Control-* header', async (t) => {
  upstream.clear()
  const before = gw.logs.accessLines().length
  for (const origin of [EVIL, 'null', 'https://app.example.com.evil.example', 'http://app.example.com', 'https://app.example.com:8443']) {
    const res = await call(gw, 'OPTIONS', '/api/projects/1/', { ...preflight(origin), authorization: `Token ${token}` })
    t.equal(res.status, 403, origin)
    t.match(res.json(), { statusCode: 403, code: 'LG_ERR_CORS_ORIGIN_DENIED', requestId: String })
    t.same(corsHeaders(res.headers), [], `no Access-Control-* for ${origin}`)
  }
  t.equal(upstream.requests.length, 0, 'Label Studio saw nothing')
  const [line] = (await gw.waitForAccessLines(before + 1)).slice(before)
  t.match(line, { method: 'OPTIONS', statusCode: 403, decision: { granted: false, reason: 'LG_ERR_CORS_ORIGIN_DENIED' } })
})

t.test('a listed origin\'s request gets the gateway\'s headers in place of Label Studio\'s', async (t) => {
  upstream.clear()
  const res = await call(gw, 'GET', '/api/projects/1/', { origin: APP, authorization: `Token ${token}` })
  t.equal(res.status, 200)
  t.equal(res.headers['access-control-allow-origin'], APP, 'not Label Studio\'s "*"')
  t.equal(res.headers['access-control-allow-credentials'], 'true')
  t.equal(res.headers['access-control-expose-headers'], 'x-request-id')
  t.same(corsHeaders(res.headers).sort(),
    ['access-control-allow-credentials', 'access-control-allow-origin', 'access-control-expose-headers'])
  t.equal(res.headers.vary, 'Accept, Cookie, Origin', 'Label Studio\'s Vary, and Origin')
  t.equal(upstream.requests[0]?.headers.origin, APP, 'Label Studio still sees the Origin')
})

t.test('an unlisted origin\'s request gets no Access-Control-* header, even Label Studio\'s', async (t) => {
  for (const headers of [{ origin: EVIL }, { origin: 'null' }, {}]) {
    upstream.clear()
    const res = await call(gw, 'GET', '/api/projects/1/', { ...headers, authorization: `Token ${token}` })
    t.equal(res.status, 200)
    t.equal(upstream.requests.length, 1, 'a request that needs no preflight is forwarded: the browser withholds the answer')
    t.same(corsHeaders(res.headers), [], `no Access-Control-* for ${JSON.stringify(headers)}`)
    t.equal(res.headers.vary, 'Accept, Cookie, Origin')
  }
})

t.test('refusals to a listed origin carry its headers, so that its page can read the error', async (t) => {
  upstream.clear()
  const missing = await call(gw, 'GET', '/api/projects/1/', { origin: APP })
  t.equal(missing.status, 401)
  t.equal(missing.headers['access-control-allow-origin'], APP)
  const denied = await call(gw, 'DELETE', '/api/projects/1/', { origin: APP, authorization: `Token ${token}` })
  t.equal(denied.status, 403)
  t.equal(denied.json().code, 'LG_ERR_POLICY_DENIED')
  t.equal(denied.headers['access-control-allow-origin'], APP)
  t.equal(upstream.requests.length, 0)
})

t.test('the edge checks come first: a preflight to a non-canonical path is refused with 400', async (t) => {
  upstream.clear()
  const res = await call(gw, 'OPTIONS', '/api/projects/1/..%2F', preflight(APP))
  t.equal(res.status, 400)
  t.match(res.json().code, /^LG_ERR_REQUEST_/)
  t.same(corsHeaders(res.headers), [])
  t.equal(upstream.requests.length, 0)
})

t.test('an OPTIONS that is no preflight goes to the policy, which allows none', async (t) => {
  upstream.clear()
  const res = await call(gw, 'OPTIONS', '/api/projects/1/', { origin: APP, authorization: `Token ${token}` })
  t.equal(res.status, 403)
  t.equal(res.json().code, 'LG_ERR_POLICY_DENIED')
  t.equal(res.headers['access-control-allow-origin'], APP)
  t.equal(res.headers['access-control-allow-methods'], undefined, 'no preflight answer')
  const anonymous = await call(gw, 'OPTIONS', '/api/projects/1/')
  t.equal(anonymous.status, 401)
  t.equal(upstream.requests.length, 0)
})

t.test('with no origins configured, every preflight is refused and no response allows an origin', async (t) => {
  const plain = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url })
  upstream.clear()
  const pre = await call(plain, 'OPTIONS', '/health/', preflight(APP))
  t.equal(pre.status, 403)
  t.equal(pre.json().code, 'LG_ERR_CORS_ORIGIN_DENIED')
  const res = await call(plain, 'GET', '/health/', { origin: APP })
  t.equal(res.status, 200)
  t.same(corsHeaders(res.headers), [])
  t.equal(upstream.requests.length, 1, 'only the GET reached Label Studio')
})
