import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'
import { checkSignupMode } from '../../src/proxy/passwords.js'

// Signup modes and password lengths, checked by the gateway before Label Studio sees the form or
// the user update, whatever the role's policy lets through.

const [ADMIN] = DEFAULT_STANDIN_USERS as [StandInUser]
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url })
const FORM = { 'content-type': 'application/x-www-form-urlencoded', origin: gw.url }
const reached = (): number => upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === undefined).length

async function signup (query: string, fields: Record<string, string>, headers: Record<string, string> = FORM) {
  const page = await call(gw, 'GET', `/user/signup/${query}`)
  const csrf = /csrftoken=([0-9a-f]+)/.exec([page.headers['set-cookie'] ?? []].flat().join(';'))?.[1] ?? 'none'
  const body = new URLSearchParams({ csrfmiddlewaretoken: csrf, ...fields }).toString()
  upstream.clear()
  return await call(gw, 'POST', `/user/signup/${query}`, { ...headers, cookie: `csrftoken=${csrf}` }, body)
}

t.test('signup needs an invite link by default, and a password of an accepted length', async (t) => {
  upstream.clear()
  const bare = await call(gw, 'GET', '/user/signup/')
  t.equal(bare.status, 403)
  t.match(bare.json(), { code: 'LG_ERR_SIGNUP_CLOSED', message: /invite/ })
  t.equal(reached(), 0)
  t.equal((await call(gw, 'GET', '/user/signup/?token=')).status, 403, 'an empty invite token')
  t.equal((await call(gw, 'GET', '/user/signup/?token=a&token=b')).status, 403, 'two invite tokens')
  t.equal((await call(gw, 'GET', '/user/signup/?token=invite-1')).status, 200)

  for (const password of ['short', 'x'.repeat(129), '\u{1F600}'.repeat(7)]) {
    const res = await signup('?token=invite-1', { email: 'new@example.com', password })
    t.equal(res.status, 400, `${[...password].length} characters`)
    t.match(res.json(), { code: 'LG_ERR_PASSWORD_POLICY' })
    t.equal(reached(), 0, 'nothing reached Label Studio')
  }
  const twice = await signup('?token=invite-1', { email: 'new@example.com', password: 'long-enough-1' }).then(async () =>
    await call(gw, 'POST', '/user/signup/?token=invite-1', { ...FORM, cookie: 'csrftoken=x' },
      'csrfmiddlewaretoken=x&email=b%40example.com&password=long-enough-1&password=short'))
  t.equal(twice.status, 400, 'a repeated password field: each one is checked')
  const multipart = await call(gw, 'POST', '/user/signup/?token=invite-1',
    { 'content-type': 'multipart/form-data; boundary=x', origin: gw.url, cookie: 'csrftoken=x' },
    '--x\r\nContent-Disposition: form-data; name="password"\r\n\r\nshort\r\n--x--\r\n')
  t.equal(multipart.status, 415, 'a body the gateway does not read for its password')
  for (const charset of ['shift_jis', 'utf-16le']) {
    const other = await call(gw, 'POST', '/user/signup/?token=invite-1',
      { ...FORM, 'content-type': `application/x-www-form-urlencoded; charset=${charset}`, cookie: 'csrftoken=x' },
      'csrfmiddlewaretoken=x&email=c%40example.com&password=%82%A0%82%A2%82%A4%82%A6')
    t.equal(other.status, 415, `charset ${charset}: Label Studio would read other characters than the gateway`)
  }
  const ok = await signup('?token=invite-1', { email: 'new@example.com', password: 'long-enough-1' })
  t.equal(ok.status, 302, 'an accepted password reaches Label Studio, which signs the user in')
  t.ok(upstream.state.users.some((u) => u.email === 'new@example.com'))
})

t.test('user updates carry no password of the wrong length, in any body Label Studio reads', async (t) => {
  const token = await gw.issueToken(ADMIN.email, 'owner', ADMIN.token)
  const headers = { authorization: `Token ${token}`, 'content-type': 'application/json' }
  upstream.clear()
  const short = await call(gw, 'PATCH', '/api/users/2/', headers, '{"first_name":"A","password":"abc"}')
  t.equal(short.status, 400)
  t.match(short.json(), { code: 'LG_ERR_PASSWORD_POLICY', message: /at least 8 characters/ })
  t.equal((await call(gw, 'POST', '/api/users/', headers, '{"email":"c@example.com","password":7}')).status, 400, 'not text')
  const form = await call(gw, 'PATCH', '/api/users/2/', { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, 'password=abc')
  t.equal(form.status, 415, 'a form body on a user route would skip the check')
  t.equal(reached(), 0)
  const good = await call(gw, 'PATCH', '/api/users/2/', headers, '{"first_name":"A","password":"long-enough-1"}')
  t.not(good.status, 400)
  t.equal(upstream.requests.at(-1)?.body.toString(), '{"first_name":"A","password":"long-enough-1"}')
})

t.test('signup modes', async (t) => {
  const modes = (mode: 'closed' | 'invite' | 'open', path: string, query = ''): string | null => {
    try {
      checkSignupMode(path, query, { mode, passwordMinLength: 8, passwordMaxLength: 128 })
      return null
    } catch (err) {
      return (err as { code: string }).code
    }
  }
  t.equal(modes('closed', '/user/signup/', 'token=x'), 'LG_ERR_SIGNUP_CLOSED')
  t.equal(modes('closed', '/user/signup'), 'LG_ERR_SIGNUP_CLOSED', 'without the slash too')
  t.equal(modes('invite', '/user/signup/', 'token=x'), null)
  t.equal(modes('open', '/user/signup/'), null)
  t.equal(modes('closed', '/user/login/'), null, 'login is not signup')
})
