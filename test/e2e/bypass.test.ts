import t, { type Test } from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startTestGateway } from '../support/gateway.js'
import { http, rawRequest } from '../support/raw.js'

// Request shapes that have bypassed other gateways, each a named regression test over a raw TLS
// socket, on a gateway that serves one host. Encoded separators, dot segments, `//`, the /static..
// prefix trick, absolute-form targets, repeated Authorization/Host/Content-Type, underscores in
// header names, Connection naming the gateway's headers, method overrides, odd methods and
// untrusted X-Forwarded-* are in edge.test.ts; this file holds the rest of the list.

const [ADMIN] = DEFAULT_STANDIN_USERS as [StandInUser]
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, {
  store: 'embedded', upstreamUrl: upstream.url, config: { server: { allowed_hosts: ['localhost'], max_body_bytes: 4096 } }
})
const token = await gw.issueToken(ADMIN.email, 'administrator', ADMIN.token)
const AUTH = `Authorization: Token ${token}`
const port = gw.gateway.port

/** A raw request with exactly these header lines (no Host added). */
const bare = (line: string, headers: string[], body = ''): string => [line, ...headers, 'Connection: close', '', body].join('\r\n')

async function refused (t: Test, text: string, status: number, code?: RegExp): Promise<void> {
  upstream.clear()
  const res = await rawRequest(port, text, { ca: gw.ca })
  t.equal(res.status, status, res.raw.split('\r\n')[0] ?? '')
  if (code && res.headers['content-type']?.startsWith('application/json')) t.match(JSON.parse(res.body), { code })
  t.same(upstream.requests, [], 'nothing reached Label Studio')
}

t.test('a raw fragment in the target', async (t) => {
  await refused(t, http('GET /api/projects/#/../admin/ HTTP/1.1', [AUTH]), 400, /LG_ERR_REQUEST_NOT_CANONICAL/)
})

t.test('an unknown Host', async (t) => {
  await refused(t, bare('GET /api/projects/ HTTP/1.1', ['Host: evil.example', AUTH]), 421, /LG_ERR_REQUEST_UNKNOWN_HOST/)
})

t.test('Host with a trailing dot, another port, userinfo or a second address', async (t) => {
  for (const host of ['localhost.', 'localhost:1', `localhost:${port}.`, `user@localhost:${port}`, `localhost:${port}, evil.example`, '']) {
    await refused(t, bare('GET /api/projects/ HTTP/1.1', [`Host: ${host}`, AUTH]), 421)
  }
})

t.test('Host in another case is the same host', async (t) => {
  upstream.clear()
  const res = await rawRequest(port, bare('GET /api/projects/ HTTP/1.1', [`Host: LocalHost:${port}`, AUTH]), { ca: gw.ca })
  t.equal(res.status, 200)
  t.equal(upstream.requests.length, 1)
})

t.test('two Content-Length headers, even equal ones', async (t) => {
  await refused(t, http('POST /api/projects/ HTTP/1.1', [AUTH, 'Content-Type: application/json', 'Content-Length: 2', 'Content-Length: 2'], '{}'), 400)
})

t.test('two Transfer-Encoding headers', async (t) => {
  await refused(t, http('POST /api/projects/ HTTP/1.1',
    [AUTH, 'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], '2\r\n{}\r\n0\r\n\r\n'), 400)
})

t.test('obsolete line folding', async (t) => {
  await refused(t, http('GET /api/projects/ HTTP/1.1', [AUTH, 'X-Note: a', ' folded: value']), 400)
  await refused(t, http('GET /api/projects/ HTTP/1.1', ['Authorization: Token', ` ${token}`]), 400)
})

t.test('a token in the query string authenticates nothing', async (t) => {
  for (const name of ['token', 'access_token', 'api_key', 'apikey', 'auth']) {
    upstream.clear()
    const res = await rawRequest(port, http(`GET /api/projects/?${name}=${token} HTTP/1.1`), { ca: gw.ca })
    t.equal(res.status, 401, name)
    t.same(upstream.requests, [])
  }
  const lines = await gw.waitForAccessLines(gw.logs.accessLines().length)
  t.notOk(JSON.stringify(lines).includes(token), 'the token never reaches a log line')
})

t.test('a body larger than server.max_body_bytes is refused when announced, and cut off when streamed', async (t) => {
  const multipart = 'Content-Type: multipart/form-data; boundary=x'
  await refused(t, http('POST /api/projects/1/import HTTP/1.1', [AUTH, multipart, 'Content-Length: 5000'], 'x'.repeat(5000)), 413,
    /LG_ERR_REQUEST_BODY_TOO_LARGE/)
  const chunk = 'y'.repeat(3000)
  const chunked = `${(3000).toString(16)}\r\n${chunk}\r\n${(3000).toString(16)}\r\n${chunk}\r\n0\r\n\r\n`
  upstream.clear()
  const res = await rawRequest(port, http('POST /api/projects/1/import HTTP/1.1', [AUTH, multipart, 'Transfer-Encoding: chunked'], chunked), { ca: gw.ca })
  t.equal(res.status, 413, 'a chunked body is counted as it streams')
  t.ok(upstream.requests.every((r) => r.body.length <= 4096), 'Label Studio never got more than the limit')
  const json = `{"title":"${'z'.repeat(5000)}"}`
  await refused(t, http('POST /api/projects/ HTTP/1.1', [AUTH, 'Content-Type: application/json', 'Transfer-Encoding: chunked'],
    `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`), 413, /LG_ERR_REQUEST_BODY_TOO_LARGE/)
})
