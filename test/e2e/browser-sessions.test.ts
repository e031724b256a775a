import t from 'tap'
import { request } from 'undici'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'
import { startRedis } from '../support/redis.js'

// The Label Studio UI's own request pattern through the gateway: the login form with Django's CSRF
// token and the browser's Origin, then same-origin fetches with the session cookie, with the user's
// role and projects applied; cross-site writes with the same cookie refused. Also access JWTs.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const redis = await startRedis(t)
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, { store: 'redis', redis, upstreamUrl: upstream.url })
const ORIGIN = gw.url
t.equal((await gw.cli(['user', 'set', ANNOTATOR.email, '--role', 'annotator', '--projects', '1'])).code, 0)

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const reached = (): typeof upstream.requests => upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === undefined)
const cookieOf = (setCookie: string | string[] | undefined, name: string): string | undefined =>
  [setCookie ?? []].flat().find((c) => c.startsWith(`${name}=`))?.split(';')[0]?.slice(name.length + 1)

async function logIn (email: string, password: string, origin = ORIGIN): Promise<{ status: number, session?: string, setCookie?: string }> {
  const page = await call(gw, 'GET', '/user/login/')
  const csrf = cookieOf(page.headers['set-cookie'], 'csrftoken') ?? ''
  const body = new URLSearchParams({ csrfmiddlewaretoken: csrf, email, password }).toString()
  const res = await call(gw, 'POST', '/user/login/', { ...FORM, cookie: `csrftoken=${csrf}`, origin }, body)
  const setCookie = [res.headers['set-cookie'] ?? []].flat()[0]
  const session = cookieOf(res.headers['set-cookie'], 'sessionid')
  return { status: res.status, ...(session ? { session } : {}), ...(setCookie ? { setCookie } : {}) }
}

t.test('the login form works through the gateway with Label Studio\'s default settings', async (t) => {
  const page = await call(gw, 'GET', '/user/login/')
  t.equal(page.status, 200)
  t.match([page.headers['set-cookie']].flat()[0], /^csrftoken=[0-9a-f]+; .*Secure; SameSite=Lax$/, 'hardened: Secure, SameSite kept')
  upstream.clear()
  const login = await logIn(ANNOTATOR.email, 'annotator-password')
  t.equal(login.status, 302)
  t.match(login.setCookie, /^sessionid=[0-9a-f]+; .*HttpOnly; Secure; SameSite=Lax$/)
  const posted = reached().find((r) => r.method === 'POST')
  t.equal(posted?.headers.origin, upstream.url, 'Label Studio sees the origin it serves, after the gateway checked the browser\'s')
  t.match(posted?.headers.cookie, /^csrftoken=[0-9a-f]+$/, 'only the CSRF cookie goes with an anonymous form')

  // Without the gateway's help Django refuses the browser's origin: the stand-in checks like Django.
  const direct = await request(`${upstream.url}/user/login/`, {
    method: 'POST', headers: { ...FORM, origin: ORIGIN, cookie: 'csrftoken=abc' }, body: 'csrfmiddlewaretoken=abc'
  })
  t.equal(direct.statusCode, 403)
  t.match(await direct.body.text(), /Origin checking failed/)

  upstream.clear()
  const forged = await logIn(ANNOTATOR.email, 'annotator-password', 'https://evil.example')
  t.equal(forged.status, 403, 'a login form posted from another site')
  t.same(reached().filter((r) => r.method === 'POST'), [])
})

t.test('same-origin fetches with the session cookie get the user\'s role and projects', async (t) => {
  const { session } = await logIn(ANNOTATOR.email, 'annotator-password')
  t.ok(session)
  const cookie = `sessionid=${session ?? ''}; csrftoken=abc; theme=dark`
  upstream.clear()
  const projects = await call(gw, 'GET', '/api/projects/', { cookie })
  t.equal(projects.status, 200)
  t.same((projects.json().results as Array<{ id: number }>).map((p) => p.id), [1], 'bound to project 1')
  const forwarded = reached()[0]
  t.equal(forwarded?.headers.cookie, `sessionid=${session ?? ''}; csrftoken=abc`, 'only Label Studio\'s cookies go upstream')
  t.equal(forwarded?.headers.authorization, undefined)
  t.equal(upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === 'session').length, 1, 'one whoami')
  upstream.clear()
  t.equal((await call(gw, 'GET', '/api/projects/1/', { cookie })).status, 200)
  t.equal(upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === 'session').length, 0, 'remembered in Redis')
  const line = (await gw.waitForAccessLines(gw.logs.accessLines().length)).at(-1)
  t.match(line, { user: ANNOTATOR.email, role: 'annotator', tokenId: null, decision: { granted: true } })

  const write = (headers: Record<string, string>) => call(gw, 'POST', '/api/tasks/1/annotations/?project=1',
    { cookie, 'content-type': 'application/json', ...headers }, '{"result":[]}')
  t.equal((await write({ origin: ORIGIN })).status, 201, 'same origin')
  t.equal((await write({ referer: `${ORIGIN}/projects/1/data` })).status, 201, 'no Origin, a same-origin Referer')
  upstream.clear()
  for (const headers of [{ origin: 'https://evil.example' }, {}, { origin: 'null' }, { referer: 'https://evil.example/x' },
    { origin: ORIGIN.replace('https:', 'http:') }]) {
    const res = await write(headers)
    t.equal(res.status, 403, `refused: ${JSON.stringify(headers)}`)
    t.match(res.json(), { code: 'LG_ERR_CSRF_ORIGIN_DENIED' })
  }
  t.same(reached(), [], 'no cross-site write reached Label Studio')
  const other = await call(gw, 'GET', '/api/tasks/87/', { cookie })
  t.equal(other.status, 404, 'a task of project 2')
  const denied = await call(gw, 'DELETE', '/api/projects/1/', { cookie, origin: ORIGIN })
  t.match(denied.json(), { code: 'LG_ERR_POLICY_DENIED' }, 'the annotator role applies')
})

t.test('ended, unknown, repeated and unbound sessions', async (t) => {
  upstream.clear()
  const stale = await call(gw, 'GET', '/api/projects/', { cookie: 'sessionid=ended; csrftoken=abc' })
  t.equal(stale.status, 401, 'an ended session is a visitor without a credential')
  t.match(stale.json(), { code: 'LG_ERR_AUTH_MISSING' })
  const page = await call(gw, 'GET', '/user/login/', { cookie: 'sessionid=ended; csrftoken=abc' })
  t.equal(page.status, 200, 'and may still log in')
  t.equal(reached().at(-1)?.headers.cookie, 'csrftoken=abc', 'the ended session is not forwarded')
  const twice = await call(gw, 'GET', '/api/projects/', { cookie: 'sessionid=a; sessionid=b' })
  t.equal(twice.status, 400, 'a cookie named twice is ambiguous')
  const { session } = await logIn(ADMIN.email, 'admin-password')
  const unbound = await call(gw, 'GET', '/api/projects/', { cookie: `sessionid=${session ?? ''}` })
  t.equal(unbound.status, 403, 'a Label Studio user without a binding gets the default role: none')
  const annotator = await logIn(ANNOTATOR.email, 'annotator-password')
  t.equal((await gw.cli(['user', 'disable', ANNOTATOR.email])).code, 0)
  t.teardown(() => gw.cli(['user', 'enable', ANNOTATOR.email]))
  const disabled = await call(gw, 'GET', '/api/projects/', { cookie: `sessionid=${annotator.session ?? ''}` })
  t.equal(disabled.status, 401, 'a disabled binding refuses its sessions at once')
  await gw.cli(['user', 'enable', ANNOTATOR.email])
  upstream.clear()
  const withToken = await gw.issueToken(ADMIN.email, 'administrator', ADMIN.token)
  await call(gw, 'GET', '/api/projects/', { authorization: `Token ${withToken}`, cookie: `sessionid=${annotator.session ?? ''}` })
  t.equal(reached()[0]?.headers.cookie, undefined, 'a token decides, and cookies stay behind')
})

t.test('Label Studio access JWTs are accepted until they expire', async (t) => {
  const jwt = upstream.accessToken(ANNOTATOR.id, 300)
  upstream.clear()
  const res = await call(gw, 'GET', '/api/projects/', { authorization: `Bearer ${jwt}` })
  t.equal(res.status, 200)
  t.same((res.json().results as Array<{ id: number }>).map((p) => p.id), [1])
  t.equal(reached()[0]?.headers.authorization, `Bearer ${jwt}`, 'forwarded as it came')
  const expired = upstream.accessToken(ANNOTATOR.id, -5)
  upstream.clear()
  const late = await call(gw, 'GET', '/api/projects/', { authorization: `Bearer ${expired}` })
  t.equal(late.status, 401)
  t.same(upstream.requests, [], 'an expired JWT is refused without asking Label Studio')
  const forged = `${jwt.slice(0, jwt.lastIndexOf('.'))}.${'A'.repeat(43)}`
  const refused = await call(gw, 'GET', '/api/projects/', { authorization: `Bearer ${forged}` })
  t.equal(refused.status, 401, 'a JWT Label Studio does not accept')
  const noWrite = await call(gw, 'POST', '/api/tasks/1/annotations/?project=1',
    { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, '{"result":[]}')
  t.equal(noWrite.status, 201, 'a JWT is no ambient credential: no Origin needed')
})
