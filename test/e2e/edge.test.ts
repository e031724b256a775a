import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'
import { http, rawRequest } from '../support/raw.js'

// The hardened edge over raw TLS sockets: every ambiguous request shape is refused with 400 before
// any decision and never reaches Label Studio; what is accepted is forwarded byte for byte.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url })
const admin = await gw.issueToken('admin@example.com', 'administrator', ANNOTATOR.token)
const annotator = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)
const AUTH = `Authorization: Token ${admin}`

const REFUSED_TARGETS: Array<[string, string]> = [
  ['encoded slash', '/api/projects%2F1/'],
  ['encoded slash, lower case', '/api/projects%2f1/'],
  ['encoded backslash', '/api/projects/1%5C/'],
  ['encoded dot segment', '/api/projects/%2E%2E/users/'],
  ['encoded dot, lower case', '/api/%2e%2e/admin/'],
  ['encoded semicolon', '/api/projects/1%3B/'],
  ['encoded question mark', '/api/projects/1%3F/'],
  ['encoded hash', '/api/projects/1%23/'],
  ['encoded NUL', '/api/projects/1%00/'],
  ['double encoding', '/api/projects/%252e%252e/'],
  ['encoded unreserved letter', '/api/proj%65cts/'],
  ['malformed encoding', '/api/projects/%zz/'],
  ['dot segment', '/api/projects/../users/'],
  ['single dot segment', '/api/./projects/'],
  ['empty segment', '/api//projects/'],
  ['leading double slash', '//api/projects/'],
  ['backslash', '/api\\projects/'],
  ['semicolon path parameter', '/api/projects;x=1/'],
  ['method override parameter', '/api/projects/?_method=DELETE'],
  ['absolute-form target', 'https://localhost/api/projects/'],
  ['authority-form target', 'localhost:443'],
  ['asterisk-form target', '*']
]

for (const [name, target] of REFUSED_TARGETS) {
  t.test(`refuses ${name}: ${target}`, async (t) => {
    upstream.clear()
    const res = await rawRequest(gw.gateway.port, http(`GET ${target} HTTP/1.1`, [AUTH]), { ca: gw.ca })
    t.equal(res.status, 400, res.raw.split('\r\n')[0] ?? '')
    if (res.headers['content-type']?.startsWith('application/json')) t.match(JSON.parse(res.body), { code: /^LG_ERR_REQUEST_/ }, res.body)
    t.equal(upstream.requests.length, 0, 'nothing reached Label Studio')
  })
}

const REFUSED_HEADERS: Array<[string, string[]]> = [
  ['two Authorization headers', [AUTH, AUTH]],
  ['two Host headers', ['Host: other.example', AUTH]],
  ['two Content-Type headers', [AUTH, 'Content-Type: application/json', 'Content-Type: text/plain']],
  ['a header name with an underscore', [AUTH, 'X_Api_Key: abc']],
  ['X-HTTP-Method-Override', [AUTH, 'X-HTTP-Method-Override: DELETE']],
  ['X-Method-Override', [AUTH, 'X-Method-Override: DELETE']],
  ['two X-Api-Key headers', ['X-Api-Key: a', 'X-Api-Key: b']]
]

for (const [name, headers] of REFUSED_HEADERS) {
  t.test(`refuses ${name}`, async (t) => {
    upstream.clear()
    const res = await rawRequest(gw.gateway.port, http('GET /api/projects/ HTTP/1.1', headers), { ca: gw.ca })
    t.equal(res.status, 400)
    t.equal(upstream.requests.length, 0)
  })
}

t.test('a path outside every rule, such as the /static.. prefix-boundary trick, is denied and not forwarded', async (t) => {
  upstream.clear()
  for (const target of ['/static../settings.py', '/staticx/app.js', '/admin/', '/api-auth/login/']) {
    const res = await rawRequest(gw.gateway.port, http(`GET ${target} HTTP/1.1`), { ca: gw.ca })
    t.equal(res.status, 401, `${target} needs a credential`)
    const denied = await rawRequest(gw.gateway.port, http(`GET ${target} HTTP/1.1`, [`Authorization: Token ${annotator}`]), { ca: gw.ca })
    t.equal(denied.status, 403, `${target} is outside the annotator's rules`)
  }
  t.equal(upstream.requests.length, 0)
})

t.test('refuses unknown and lower-case methods', async (t) => {
  upstream.clear()
  for (const method of ['TRACE', 'PROPFIND', 'get', 'Get']) {
    const res = await rawRequest(gw.gateway.port, http(`${method} /api/projects/ HTTP/1.1`, [AUTH]), { ca: gw.ca })
    t.equal(res.status, 400, method)
  }
  // Node answers nothing to CONNECT on a server with no tunnel handler: the socket is closed.
  const connect = await rawRequest(gw.gateway.port, http('CONNECT localhost:443 HTTP/1.1', [AUTH]), { ca: gw.ca })
  t.not(connect.status, 200)
  t.equal(upstream.requests.length, 0)
})

t.test('refuses Content-Length together with Transfer-Encoding', async (t) => {
  upstream.clear()
  const res = await rawRequest(gw.gateway.port, http('POST /api/tasks/1/annotations/ HTTP/1.1',
    [AUTH, 'Content-Type: application/json', 'Content-Length: 2', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), { ca: gw.ca })
  t.equal(res.status, 400)
  t.equal(upstream.requests.length, 0)
})

t.test('forwards the checked target byte for byte', async (t) => {
  const targets = [
    '/api/projects/?page=1&page_size=10',
    '/api/tasks/?project=1&fields=all&query=%7B%22filters%22%3A%5B%5D%7D',
    "/api/projects/1/?search=it's+%C3%A9t%C3%A9&x=%2F%2E",
    '/api/projects/1',
    '/data/upload/1/my%20file%C3%A9.png',
    '/api/projects/?empty=&flag&a=1&a=2'
  ]
  for (const target of targets) {
    upstream.clear()
    await rawRequest(gw.gateway.port, http(`GET ${target} HTTP/1.1`, [AUTH]), { ca: gw.ca })
    t.equal(upstream.requests[0]?.url, target)
  }
})

t.test('removes hop-by-hop headers and every header named in Connection', async (t) => {
  upstream.clear()
  const res = await rawRequest(gw.gateway.port, [
    'GET /api/projects/1/ HTTP/1.1', 'Host: localhost', AUTH, 'Keep-Alive: timeout=5', 'TE: trailers',
    'X-Secret-Hop: 1', 'Upgrade: websocket', 'Connection: close, X-Secret-Hop, Keep-Alive', '', ''
  ].join('\r\n'), { ca: gw.ca })
  t.equal(res.status, 200)
  const seen = upstream.requests[0]?.headers ?? {}
  for (const name of ['keep-alive', 'te', 'x-secret-hop', 'upgrade']) t.notOk(name in seen, `${name} removed`)
  t.equal(seen.authorization, `Token ${ANNOTATOR.token}`)
  t.equal(seen['x-forwarded-for'], '127.0.0.1')
  t.match(seen['x-request-id'], /^[0-9a-f-]{36}$/)
})

t.test('client-sent X-Forwarded-* and X-Request-Id are replaced when the peer is not trusted', async (t) => {
  upstream.clear()
  const res = await call(gw, 'GET', '/api/projects/1/', {
    authorization: `Token ${admin}`,
    'x-forwarded-for': '10.9.9.9',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'evil.example',
    'x-request-id': 'chosen-by-client',
    forwarded: 'for=10.9.9.9',
    'x-real-ip': '10.9.9.9'
  })
  const seen = upstream.requests[0]?.headers ?? {}
  t.equal(seen['x-forwarded-for'], '127.0.0.1')
  t.equal(seen['x-forwarded-proto'], 'https')
  t.equal(seen['x-forwarded-host'], `127.0.0.1:${gw.gateway.port}`)
  t.notOk(seen.forwarded)
  t.notOk(seen['x-real-ip'])
  t.not(seen['x-request-id'], 'chosen-by-client')
  t.equal(seen['x-request-id'], res.headers['x-request-id'], 'the same request id goes upstream and back')
})

t.test('Label Studio refusing connections gives 502; Label Studio too slow gives 504', async (t) => {
  upstream.behaviour.reset = true
  const reset = await call(gw, 'GET', '/api/projects/1/', { authorization: `Token ${admin}` })
  upstream.behaviour.reset = false
  t.equal(reset.status, 502)
  t.equal(reset.json().code, 'LG_ERR_UPSTREAM_UNREACHABLE')
  upstream.behaviour.delayMs = 2500
  const slow = await call(gw, 'GET', '/api/projects/1/', { authorization: `Token ${admin}` })
  upstream.behaviour.delayMs = 0
  t.equal(slow.status, 504)
  t.equal(slow.json().code, 'LG_ERR_UPSTREAM_TIMEOUT')
  t.match(slow.json().message, /did not answer in time/)
})

t.test('Label Studio\'s own errors pass through untouched', async (t) => {
  upstream.behaviour.failStatus = 503
  const res = await call(gw, 'GET', '/api/projects/1/', { authorization: `Token ${admin}` })
  upstream.behaviour.failStatus = null
  t.equal(res.status, 503)
  t.notOk('code' in res.json(), 'the body is Label Studio\'s, not the gateway\'s')
})

t.test('Expect: 100-continue is answered by the gateway and not forwarded', async (t) => {
  upstream.clear()
  const body = JSON.stringify({ result: [], lead_time: 1 })
  const res = await rawRequest(gw.gateway.port, http('POST /api/tasks/1/annotations/ HTTP/1.1', [
    AUTH, 'Content-Type: application/json', `Content-Length: ${body.length}`, 'Expect: 100-continue'
  ], body), { ca: gw.ca })
  t.match(res.raw, /^HTTP\/1\.1 100 Continue/)
  t.match(res.raw, /HTTP\/1\.1 201 Created/)
  t.notOk(upstream.requests[0]?.headers.expect)
  t.equal(upstream.requests[0]?.body.toString(), body)
})

t.test('provenance and URL-rewrite headers never reach Label Studio', async (t) => {
  upstream.clear()
  const names = ['X-Original-URL', 'X-Rewrite-URL', 'X-Script-Name', 'X-Original-Method', 'X-Forwarded-Ssl', 'X-Scheme',
    'X-Url-Scheme', 'Front-End-Https', 'CF-Connecting-IP', 'X-Cluster-Client-IP', 'X-Forwarded', 'Forwarded-For', 'X-Host']
  const res = await rawRequest(gw.gateway.port, http('GET /api/projects/1/ HTTP/1.1', [AUTH, ...names.map((n) => `${n}: /admin/`)]), { ca: gw.ca })
  t.equal(res.status, 200)
  for (const name of names) t.notOk(name.toLowerCase() in (upstream.requests[0]?.headers ?? {}), `${name} removed`)
})

t.test('refuses Connection naming a header the gateway reads or sets, and transfer-codings other than chunked', async (t) => {
  upstream.clear()
  for (const header of ['Connection: content-type', 'Connection: close, Authorization', 'Connection: x-forwarded-for', 'Connection: Host']) {
    const res = await rawRequest(gw.gateway.port, http('POST /api/tasks/1/annotations/ HTTP/1.1',
      [AUTH, 'Content-Type: application/json', 'Content-Length: 2', header], '{}'), { ca: gw.ca })
    t.equal(res.status, 400, header)
  }
  for (const te of ['gzip, chunked', 'identity', 'chunked, chunked']) {
    const res = await rawRequest(gw.gateway.port, http('POST /api/tasks/1/annotations/ HTTP/1.1',
      [AUTH, 'Content-Type: application/json', `Transfer-Encoding: ${te}`], '2\r\n{}\r\n0\r\n\r\n'), { ca: gw.ca })
    t.equal(res.status, 400, te)
  }
  t.equal(upstream.requests.length, 0)
})

t.test('too many header lines get 431 rather than being dropped quietly', async (t) => {
  upstream.clear()
  const filler = Array.from({ length: 150 }, (_, i) => `X-Filler-${i}: ${i}`)
  const res = await rawRequest(gw.gateway.port, http('GET /api/projects/1/ HTTP/1.1', [...filler, AUTH]), { ca: gw.ca })
  t.equal(res.status, 431)
  t.equal(JSON.parse(res.body).code, 'LG_ERR_REQUEST_HEADERS_TOO_LARGE')
  t.equal(upstream.requests.length, 0)
})

t.test('a missing Host, HTTP/2.0 and HTTP/0.9 request lines, and CONNECT get the gateway\'s error body', async (t) => {
  upstream.clear()
  const noHost = await rawRequest(gw.gateway.port, `GET /health/ HTTP/1.0\r\n${AUTH}\r\n\r\n`, { ca: gw.ca })
  t.equal(noHost.status, 400)
  t.equal(JSON.parse(noHost.body).code, 'LG_ERR_REQUEST_BAD_HEADER')
  const v2 = await rawRequest(gw.gateway.port, http('GET /health/ HTTP/2.0'), { ca: gw.ca })
  t.equal(v2.status, 400)
  const v09 = await rawRequest(gw.gateway.port, 'GET /health/\r\n\r\n', { ca: gw.ca })
  t.not(v09.status, 200)
  const before = gw.logs.accessLines().length
  const connect = await rawRequest(gw.gateway.port, http('CONNECT 127.0.0.1:9 HTTP/1.1', [AUTH]), { ca: gw.ca })
  t.equal(connect.status, 400)
  t.equal(JSON.parse(connect.body).code, 'LG_ERR_REQUEST_BAD_METHOD')
  const lines = await gw.waitForAccessLines(before + 1)
  t.match(lines.at(-1), { decision: { granted: false, reason: 'LG_ERR_REQUEST_BAD_METHOD', detail: 'connect' } })
  t.equal(upstream.requests.length, 0)
})

t.test('a client that leaves mid-body is logged once, as aborted', async (t) => {
  const { connect } = await import('node:tls')
  const { readFileSync } = await import('node:fs')
  const before = gw.logs.accessLines().length
  const socket = connect({ host: '127.0.0.1', port: gw.gateway.port, ca: readFileSync(gw.ca), servername: 'localhost' })
  await new Promise((resolve) => socket.once('secureConnect', resolve))
  socket.write(http('POST /api/tasks/1/annotations/ HTTP/1.1', [AUTH, 'Content-Type: application/json', 'Content-Length: 1000'], '{"res'))
  await new Promise((resolve) => setTimeout(resolve, 200))
  socket.destroy()
  const lines = (await gw.waitForAccessLines(before + 1)).slice(before)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const after = gw.logs.accessLines().slice(before)
  t.equal(after.length, 1, `one line: ${JSON.stringify(after)}`)
  t.match(lines[0], { method: 'POST', route: '/api/tasks/{id:int}/annotations/', decision: { granted: false, reason: 'LG_ERR_REQUEST_ABORTED' } })
})

t.test('the Host header is read strictly before it goes upstream as X-Forwarded-Host', async (t) => {
  for (const [host, forwarded] of [['labels.example.com', 'labels.example.com'], ['evil.example:1@x', undefined], ['a:b:c', undefined]] as const) {
    upstream.clear()
    await rawRequest(gw.gateway.port, ['GET /api/projects/1/ HTTP/1.1', `Host: ${host}`, AUTH, 'Connection: close', '', ''].join('\r\n'), { ca: gw.ca })
    t.equal(upstream.requests[0]?.headers['x-forwarded-host'], forwarded, host)
  }
})
