import t, { type Test } from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startRedis, type TestRedis } from '../support/redis.js'
import { call, runCli, startTestGateway, type StoreKind, type TestGateway } from '../support/gateway.js'

// The foundation end to end, over real TLS sockets: a client calls Label Studio routes through the
// gateway, tokens are checked in a real identity store, decided by the shipped role policies, and
// forwarded to the Label Studio stand-in. The whole suite runs once per store.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const CREDENTIAL_HEADERS = ['x-api-key', 'cookie', 'proxy-authorization']

interface Setup { gw: TestGateway, upstream: StandIn, redis: TestRedis | null }

async function setup (t: Test, store: StoreKind): Promise<Setup> {
  const upstream = await startLabelStudioStandIn()
  t.teardown(() => upstream.close())
  const redis = store === 'redis' ? await startRedis(t) : null
  const gw = await startTestGateway(t, { store, ...(redis ? { redis } : {}), upstreamUrl: upstream.url })
  return { gw, upstream, redis }
}

function auth (token: string): Record<string, string> {
  return { authorization: `Token ${token}` }
}

for (const store of ['redis', 'embedded'] as const) {
  t.test(`on the ${store} store`, async (t) => {
    const { gw, upstream, redis } = await setup(t, store)
    const annotator = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)

    t.test('an annotator reads a project and creates an annotation', async (t) => {
      upstream.clear()
      const project = await call(gw, 'GET', '/api/projects/1/', auth(annotator))
      t.equal(project.status, 200)
      t.equal(project.json().id, 1)
      const created = await call(gw, 'POST', '/api/tasks/1/annotations/',
        { ...auth(annotator), 'content-type': 'application/json' },
        JSON.stringify({ result: [], lead_time: 3.5, was_cancelled: false }))
      t.equal(created.status, 201)
      t.equal(created.json().completed_by, ANNOTATOR.id, 'Label Studio saw the annotator\'s own Label Studio token')
      t.equal(upstream.requests.length, 2)
      t.equal(upstream.requests[1]?.url, '/api/tasks/1/annotations/')
      t.equal(upstream.requests[1]?.user?.email, ANNOTATOR.email)
    })

    t.test('the annotator cannot delete the project, and Label Studio sees nothing', async (t) => {
      upstream.clear()
      const res = await call(gw, 'DELETE', '/api/projects/1/', auth(annotator))
      t.equal(res.status, 403)
      t.match(res.json(), { statusCode: 403, error: 'Forbidden', code: 'LG_ERR_POLICY_DENIED', requestId: String })
      t.equal(res.headers['x-request-id'], res.json().requestId)
      t.equal(upstream.requests.length, 0)
    })

    t.test('upstream receives exactly one credential and no client credential header', async (t) => {
      upstream.clear()
      const res = await call(gw, 'GET', '/api/projects/?page=1&page_size=10', {
        ...auth(annotator), 'x-api-key': ADMIN.token, cookie: 'sessionid=forged', 'proxy-authorization': 'Basic eDp5'
      })
      t.equal(res.status, 200)
      const seen = upstream.requests[0]
      t.ok(seen, 'the request reached the upstream')
      const names = (seen?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
      t.equal(names.filter((n) => n === 'authorization').length, 1)
      t.equal(seen?.headers.authorization, `Token ${ANNOTATOR.token}`)
      for (const name of CREDENTIAL_HEADERS) t.notOk(names.includes(name), `no ${name} upstream`)
      t.equal(seen?.user?.email, ANNOTATOR.email, 'the admin key sent in X-Api-Key did not decide')
    })

    t.test('X-Api-Key authenticates when there is no Authorization', async (t) => {
      upstream.clear()
      const res = await call(gw, 'GET', '/api/projects/1/', { 'x-api-key': annotator })
      t.equal(res.status, 200)
      t.equal(upstream.requests[0]?.headers.authorization, `Token ${ANNOTATOR.token}`)
      t.notOk(upstream.requests[0]?.headers['x-api-key'])
    })

    t.test('Bearer works like Token', async (t) => {
      const res = await call(gw, 'GET', '/api/projects/1/', { authorization: `Bearer ${annotator}` })
      t.equal(res.status, 200)
    })

    t.test('two Authorization headers are refused with 400', async (t) => {
      upstream.clear()
      const res = await call(gw, 'GET', '/api/projects/1/', { authorization: [`Token ${annotator}`, 'Token other'] })
      t.equal(res.status, 400)
      t.equal(res.json().code, 'LG_ERR_REQUEST_BAD_HEADER')
      t.equal(upstream.requests.length, 0)
    })

    t.test('unknown, malformed and missing credentials get 401 with WWW-Authenticate', async (t) => {
      upstream.clear()
      for (const headers of [auth('lg_unknown-token-value'), { authorization: 'Basic YTpi' }, { authorization: 'Token' }]) {
        const res = await call(gw, 'GET', '/api/projects/1/', headers)
        t.equal(res.status, 401)
        t.equal(res.json().code, 'LG_ERR_AUTH_INVALID')
        t.match(res.headers['www-authenticate'], /^Token realm="labelgate"/)
      }
      const missing = await call(gw, 'GET', '/api/projects/1/')
      t.equal(missing.status, 401)
      t.equal(missing.json().code, 'LG_ERR_AUTH_MISSING')
      t.equal(upstream.requests.length, 0)
    })

    t.test('anonymous requests reach only what the anonymous role allows', async (t) => {
      upstream.clear()
      const health = await call(gw, 'GET', '/health/')
      t.equal(health.status, 200)
      t.same(health.json(), { status: 'UP' })
      t.equal(upstream.requests[0]?.headers.authorization, undefined, 'no credential goes upstream')
    })

    t.test('a registered Label Studio token is forwarded as it is', async (t) => {
      const made = await gw.cli(['token', 'register', '--user', ADMIN.email], ADMIN.token)
      t.equal(made.code, 0, made.stderr)
      t.equal((await gw.cli(['user', 'set', ADMIN.email, '--role', 'administrator'])).code, 0)
      upstream.clear()
      const res = await call(gw, 'DELETE', '/api/projects/2/', { 'x-api-key': ADMIN.token })
      t.equal(res.status, 204)
      t.equal(upstream.requests[0]?.headers.authorization, `Token ${ADMIN.token}`)
    })

    t.test('a token belongs to one record: register refuses a known token and any gateway token', async (t) => {
      const again = await gw.cli(['token', 'register', '--user', 'mallory@example.com'], ADMIN.token)
      t.equal(again.code, 1)
      t.match(again.stderr, /already registered as tk_[0-9a-f]+ for admin@example\.com/)
      const gateway = await gw.cli(['token', 'register', '--user', 'mallory@example.com'], annotator)
      t.equal(gateway.code, 1)
      t.match(gateway.stderr, /gateway token/)
      const list = JSON.parse((await gw.cli(['token', 'list', '--json'])).stdout) as Array<{ user: string }>
      t.notOk(list.some((e) => e.user === 'mallory@example.com'), 'nothing was stored for mallory')
      upstream.clear()
      await call(gw, 'GET', '/api/projects/1/', { 'x-api-key': ADMIN.token })
      t.equal(upstream.requests[0]?.headers.authorization, `Token ${ADMIN.token}`, 'the admin token still belongs to admin')
    })

    t.test('tokens expire after identity.token_lifetime unless --expires says otherwise', async (t) => {
      const list = JSON.parse((await gw.cli(['token', 'list', '--json'])).stdout) as Array<{ user: string, expires: string }>
      const first = list.find((e) => e.user === ANNOTATOR.email)
      const days = (Date.parse(first?.expires ?? '') - Date.now()) / 86_400_000
      t.ok(days > 89.9 && days <= 90, `the default lifetime is 90 days (${days.toFixed(2)})`)
      t.equal((await gw.cli(['token', 'create', '--user', 'forever@example.com', '--expires', 'never'])).code, 0)
      const forever = (JSON.parse((await gw.cli(['token', 'list', '--json'])).stdout) as Array<{ user: string, expires: string }>)
        .find((e) => e.user === 'forever@example.com')
      t.equal(forever?.expires, 'never')
    })

    t.test('listing and revoking need no encryption key', async (t) => {
      const env = { ...gw.env }
      delete env.LG_TEST_KEY
      const list = await runCli(['token', 'list', '--config', gw.configFile], env)
      t.equal(list.code, 0, list.stderr)
      const create = await runCli(['token', 'create', '--user', 'x@example.com', '--upstream-token-stdin', '--config', gw.configFile], env, 'abcdefgh12')
      t.equal(create.code, 1, 'token create needs it')
      t.match(create.stderr, /LG_TEST_KEY is not set/)
    })

    t.test('an expired token gets 401', async (t) => {
      const token = await gw.issueToken('expiring@example.com', 'annotator', ANNOTATOR.token, ['--expires', '1s'])
      t.equal((await call(gw, 'GET', '/api/projects/1/', auth(token))).status, 200)
      await new Promise((resolve) => setTimeout(resolve, 1100))
      t.equal((await call(gw, 'GET', '/api/projects/1/', auth(token))).status, 401)
    })

    t.test('a revoked token gets 401 at once', async (t) => {
      const token = await gw.issueToken('revoked@example.com', 'annotator', ANNOTATOR.token)
      t.equal((await call(gw, 'GET', '/api/projects/1/', auth(token))).status, 200, 'cached by now')
      const list = await gw.cli(['token', 'list', '--json'])
      const entry = (JSON.parse(list.stdout) as Array<{ id: string, user: string }>).find((e) => e.user === 'revoked@example.com')
      t.ok(entry, 'token list shows the token')
      t.notMatch(list.stdout, token, 'token list never prints the token')
      const revoked = await gw.cli(['token', 'revoke', entry?.id ?? ''])
      t.equal(revoked.code, 0, revoked.stderr)
      upstream.clear()
      const res = await call(gw, 'GET', '/api/projects/1/', auth(token))
      t.equal(res.status, 401)
      t.equal(res.json().code, 'LG_ERR_AUTH_INVALID')
      t.equal(upstream.requests.length, 0)
    })

    t.test('a disabled user\'s tokens get 401 at once, and a role change applies at once', async (t) => {
      const token = await gw.issueToken('moved@example.com', 'annotator', ANNOTATOR.token)
      t.equal((await call(gw, 'DELETE', '/api/projects/1/', auth(token))).status, 403)
      t.equal((await gw.cli(['user', 'set', 'moved@example.com', '--role', 'administrator'])).code, 0)
      upstream.clear()
      t.equal((await call(gw, 'GET', '/api/users/', auth(token))).status, 200, 'administrator now')
      t.equal((await gw.cli(['user', 'disable', 'moved@example.com'])).code, 0)
      t.equal((await call(gw, 'GET', '/api/projects/1/', auth(token))).status, 401)
    })

    t.test('HSTS and a request id are on every response, errors included', async (t) => {
      for (const res of [await call(gw, 'GET', '/health/'), await call(gw, 'GET', '/api/projects/1/'), await call(gw, 'GET', '/a/../b')]) {
        t.match(res.headers['strict-transport-security'], /max-age=31536000/)
        t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/)
      }
    })

    if (redis) {
      t.test('with Redis frozen, requests get 503 within the command timeout, and recover after', async (t) => {
        await call(gw, 'GET', '/api/projects/1/', auth(annotator))
        redis.pause()
        t.teardown(() => redis.resume())
        upstream.clear()
        // A fresh token is not in any replica's memory, so it must reach the store.
        const started = Date.now()
        const res = await call(gw, 'GET', '/api/projects/1/', auth(annotator + 'x'))
        t.equal(res.status, 503)
        t.ok(Date.now() - started < 3000, 'answered within the command timeout, not left hanging')
        t.equal(upstream.requests.length, 0)
        redis.resume()
        const deadline = Date.now() + 10_000
        let status = 0
        while (Date.now() < deadline && status !== 200) {
          status = (await call(gw, 'GET', '/api/projects/1/', auth(annotator))).status
          if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
        }
        t.equal(status, 200, 'serving again once Redis answers')
      })

      t.test('with Redis stopped, requests get 503 and Label Studio sees nothing', async (t) => {
        await redis.stop()
        t.teardown(() => redis.start())
        upstream.clear()
        const res = await call(gw, 'GET', '/api/projects/1/', auth(annotator))
        t.equal(res.status, 503)
        t.equal(res.json().code, 'LG_ERR_TOKEN_STORE_UNAVAILABLE')
        t.equal(upstream.requests.length, 0)
        const ready = await call(gw, 'GET', '/-/readyz')
        t.equal(ready.status, 503)
      })
    }
  })
}
