import t from 'tap'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import aws4 from 'aws4'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { buildAnnotation, buildProject, buildTask } from '../support/labelstudio-standin-data.js'
import { startTestGateway } from '../support/gateway.js'
import { s3ObjectPath, startS3 } from '../support/s3.js'
import { startAzurite } from '../support/azurite.js'
import { freePort } from '../support/redis.js'
import { mediaClient, resolverPath, s3BackendConfig } from '../support/media.js'
import { encodeFileUri } from '../../src/media/uri.js'

// Attacks on the storage resolvers and signed links, against the real emulators (s3rver checks
// SigV4, Azurite checks Shared Key). Each test reads the emulators' request logs: a refusal must
// leave them empty.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const s3 = await startS3(t, { buckets: ['labelling', 'only4'] })
const azure = await startAzurite(t, { containers: ['frames', 'sasbox'] })
// A Label Studio user with no gateway binding under their e-mail: an operator binds them by id.
const THIRD: StandInUser = { id: 3, email: 'third@example.com', token: '3333333333333333333333333333333333333333' }
const upstream = await startLabelStudioStandIn({ users: [...DEFAULT_STANDIN_USERS, THIRD] })
t.teardown(() => upstream.close())

const IMAGE = randomBytes(3000)
const PREFIX_SECRET = Buffer.from('an object no task references: images/cat')
const QUOTE_SECRET = Buffer.from('an object no task references: images/o')
const SECRET = Buffer.from('secret of project 4')
// Keys that must be signed and encoded exactly (SigV4 and Shared Key canonical forms).
const SPECIAL = ['images/a+b.png', 'images/ü.png', 'images/(1).png', 'images/100%.png', 'images/a?b#c.png',
  "images/it's.png", 'images/x!*.png', 'images/a=b&c.png', 'images/nb\u00a0sp.png', 'images/sp ace.png']
// A long key of several segments (s3rver stores keys as files: each segment under 255 bytes).
const LONG = 'long/' + Array.from({ length: 10 }, (_, i) => String(i) + 'k'.repeat(149)).join('/') + '.png'
// "hello world" compressed with gzip: an object stored with Content-Encoding: gzip.
const GZIPPED = Buffer.from('1f8b0800000000000003cb48cdc9c95728cf2fca49010085114a0d0b000000', 'hex')

await s3.put('labelling', 'images/cat 1.png', IMAGE, 'image/png')
await s3.put('labelling', 'images/cat', PREFIX_SECRET, 'image/png')
await s3.put('labelling', "images/o'brien.png", randomBytes(50), 'image/png')
await s3.put('labelling', 'images/o', QUOTE_SECRET, 'image/png')
await s3.put('labelling', 'images/secret.png', SECRET, 'image/png')
await s3.put('labelling', LONG, Buffer.from('long key'), 'image/png')
await s3.put('only4', 'x.png', randomBytes(10), 'image/png')
for (const key of SPECIAL) await s3.put('labelling', key, Buffer.from(`s3:${key}`), 'image/png')
for (const key of SPECIAL) await azure.put('frames', key, Buffer.from(`azure:${key}`), 'image/png')
await azure.put('frames', 'secret.jpg', randomBytes(10), 'image/jpeg')
await azure.put('sasbox', 'x.png', randomBytes(10), 'image/png')
{
  const host = new URL(s3.endpoint).host
  const path = s3ObjectPath('labelling', 'gz/hello.txt')
  const signed = aws4.sign({
    host,
    path,
    method: 'PUT',
    service: 's3',
    region: s3.region,
    headers: { 'Content-Type': 'text/plain', 'Content-Encoding': 'gzip' },
    body: GZIPPED
  }, { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey })
  const res = await request(s3.endpoint + path, { method: 'PUT', headers: signed.headers as Record<string, string>, body: GZIPPED })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`gzip PUT: ${res.statusCode}`)
}

upstream.state.projects.insert(buildProject(upstream.state, { id: 3, title: 'Attack 3', label_config: '<View/>' }))
upstream.state.projects.insert(buildProject(upstream.state, { id: 4, title: 'Attack 4', label_config: '<View/>' }))
const task3 = Number(upstream.state.tasks.insert(buildTask({
  project: 3,
  data: {
    image: 's3://labelling/images/cat 1.png',
    quote: "s3://labelling/images/o'brien.png",
    s3special: SPECIAL.map((k) => `s3://labelling/${k}`),
    azspecial: SPECIAL.map((k) => `azure-blob://frames/${k}`),
    long: `s3://labelling/${LONG}`,
    gz: 's3://labelling/gz/hello.txt',
    gone: 's3://gone/x.png',
    sas: 'azure-blob://sasbox/x.png',
    elsewhere: 's3://only4/x.png'
  },
  meta: { hidden: 's3://labelling/images/secret.png' }
})).id)
// References that must not count: object keys, meta, annotations and predictions.
const hiding = Number(upstream.state.tasks.insert(buildTask({
  project: 3,
  data: { 's3://labelling/images/secret.png': 'a key, not a value', nested: { 'azure-blob://frames/secret.jpg': 1 } },
  meta: { image: 's3://labelling/images/secret.png' }
})).id)
upstream.state.annotations.insert(buildAnnotation(upstream.state, {
  task: hiding, project: 3, result: [{ value: { image: 's3://labelling/images/secret.png' } }]
}))
const stringProject = Number(upstream.state.tasks.insert(buildTask({ project: '3', data: { image: 's3://labelling/images/cat 1.png' } })).id)
const noProject = Number(upstream.state.tasks.insert(buildTask({ data: { image: 's3://labelling/images/cat 1.png' } })).id)
const tooMany = Number(upstream.state.tasks.insert(buildTask({
  project: 3, data: { list: Array.from({ length: 10_001 }, (_, i) => `s3://labelling/m/${i}.png`), image: 's3://labelling/images/cat 1.png' }
})).id)
const huge = Number(upstream.state.tasks.insert(buildTask({
  project: 3, data: { image: 's3://labelling/images/cat 1.png', padding: 'x'.repeat(300_000) }
})).id)

const closedPort = await freePort()
const FAKE_SIG = 'FAKEsasSIGNATUREvalue0123456789abcdefABCDEF%3D'
const env = {
  LG_S3_ID: s3.accessKeyId,
  LG_S3_SECRET: s3.secretAccessKey,
  LG_AZ_KEY: azure.accountKey,
  LG_SAS: `sv=2021-08-06&ss=b&srt=sco&sp=r&se=2099-01-01T00:00:00Z&sig=${FAKE_SIG}`,
  LG_LINK: randomBytes(32).toString('hex')
}
const s3Backend = (name: string, bucket: string, projects: number[], endpoint = s3.endpoint) =>
  s3BackendConfig(s3, name, bucket, { projects, endpoint })
const storage = {
  headers_timeout: '2s',
  link_keys: [{ id: 'k1', secret: { env: 'LG_LINK' } }],
  backends: [
    { ...s3Backend('images', 'labelling', [3, 4]), signed_links: true },
    s3Backend('only-project-4', 'only4', [4]),
    s3Backend('down', 'gone', [3], `http://127.0.0.1:${closedPort}`),
    { name: 'frames', type: 'azure', account: azure.account, endpoint: azure.endpoint, containers: ['frames'], projects: [3], account_key: { env: 'LG_AZ_KEY' } },
    { name: 'sas', type: 'azure', account: azure.account, endpoint: azure.endpoint, containers: ['sasbox'], projects: [3], sas_token: { env: 'LG_SAS' } }
  ]
}
const gw = await startTestGateway(t, {
  store: 'embedded', upstreamUrl: upstream.url, env, config: { storage, filters: { response_max_bytes: 200_000 } }
})
const AUTH = { authorization: `Token ${await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token, [], '3')}` }
const MANAGER = { authorization: `Token ${await gw.issueToken(ADMIN.email, 'manager', ADMIN.token)}` }

const answers: string[] = []
const call = mediaClient(gw, answers)
const b64 = encodeFileUri
const resolver = resolverPath
const fetched = (): string[] => s3.requests.map((r) => `${r.method} ${r.path}`)

t.test('the part of a referenced key before a space or quote is no reference, and is not fetched', async (t) => {
  // The task references "s3://labelling/images/cat 1.png" (a key with a space, like the shipped tests'
  // own "cat 1.png"). The embedded-URI scan also reads "s3://labelling/images/cat" out of that whole
  // value, a URI the task never names; likewise "images/o" out of "images/o'brien.png".
  for (const [uri, name] of [['s3://labelling/images/cat', 'cut at a space'], ['s3://labelling/images/o', 'cut at a quote']]) {
    s3.clear()
    const res = await call('GET', resolver(task3, uri as string), AUTH)
    t.equal(res.status, 403, `${name}: refused`)
    t.equal(res.raw.includes(Buffer.from('an object no task references')), false, `${name}: the other object's bytes are not sent`)
    t.same(fetched(), [], `${name}: nothing is fetched`)
  }
})

t.test('fileuri encodings never reach an object the task does not reference', async (t) => {
  const good = 's3://labelling/images/cat 1.png'
  // Forms of the referenced URI that the gateway may accept (Label Studio's own encodings).
  const accepted = new Map<string, string>([
    ['padding written', Buffer.from(good).toString('base64url').padEnd(Math.ceil(good.length / 3) * 4, '=')],
    ['padding percent-encoded', Buffer.from(good).toString('base64url').padEnd(Math.ceil(good.length / 3) * 4, '=').replace(/=/g, '%3D')],
    ['the URI itself', encodeURIComponent(good)]
  ])
  const refused = new Map<string, string>([
    ['padding in the middle', b64(good).slice(0, 8) + '=' + b64(good).slice(8)],
    ['double-encoded padding', b64(good) + '%253D'],
    ['leading white space', '%20' + b64(good)],
    ['trailing newline', b64(good) + '%0A'],
    ['upper-case scheme', b64('S3://labelling/images/cat 1.png')],
    ['one slash', b64('s3:/labelling/images/cat 1.png')],
    ['three slashes', b64('s3:///labelling/images/cat 1.png')],
    ['a port on the bucket', b64('s3://labelling:443/images/cat 1.png')],
    ['user info before the bucket', b64('s3://x@labelling/images/cat 1.png')],
    ['a trailing dot on the bucket', b64('s3://labelling./images/cat 1.png')],
    ['bucket in upper case', b64('s3://LABELLING/images/cat 1.png')],
    ['dot-dot to another key', b64('s3://labelling/images/x/../secret.png')],
    ['dot segment', b64('s3://labelling/images/./cat 1.png')],
    ['an encoded slash', b64('s3://labelling/images%2Fcat 1.png')],
    ['a query', b64('s3://labelling/images/cat 1.png?x=1')],
    ['a fragment', b64('s3://labelling/images/cat 1.png#x')],
    ['a trailing slash', b64('s3://labelling/images/cat 1.png/')],
    ['an empty segment', b64('s3://labelling//images/cat 1.png')],
    ['decomposed unicode of a referenced key', b64('s3://labelling/images/u\u0308.png')],
    ['a key past 2048 characters', b64('s3://labelling/' + 'a'.repeat(2100))],
    ['a suffix of a referenced URI', b64('labelling/images/cat 1.png')],
    ['a longer key than the referenced one', b64('s3://labelling/images/cat 1.png.bak')],
    ['a key hidden only in meta', b64('s3://labelling/images/secret.png')],
    ['empty', '']
  ])
  for (const [name, value] of accepted) {
    s3.clear()
    const res = await call('GET', `/tasks/${task3}/resolve/?fileuri=${value}`, AUTH)
    t.equal(res.status, 200, name)
    t.same(res.raw, IMAGE, name)
  }
  // Standard base64 (with + and /) of referenced keys: Label Studio's decoder reads it; the gateway
  // may refuse it, but if it answers, it is with the referenced object.
  for (const key of ['images/a?b#c.png', 'images/a+b.png']) {
    s3.clear()
    const std = Buffer.from(`s3://labelling/${key}`).toString('base64')
    for (const value of [std, encodeURIComponent(std)]) {
      const res = await call('GET', `/tasks/${task3}/resolve/?fileuri=${value}`, AUTH)
      if (res.status === 200) t.equal(res.raw.toString(), `s3:${key}`, `standard base64 of ${key}: the referenced object`)
      else t.match(res.json(), { code: /^LG_ERR_MEDIA_/ }, `standard base64 of ${key}: ${res.status}`)
    }
    t.ok(fetched().every((f) => f === `GET ${s3ObjectPath('labelling', key)}`), 'only the referenced key is fetched')
  }
  for (const [name, value] of refused) {
    s3.clear()
    const res = await call('GET', `/tasks/${task3}/resolve/?fileuri=${value}`, AUTH)
    t.ok(res.status === 400 || res.status === 403, `${name}: ${res.status}`)
    t.match(res.json(), { code: /^LG_ERR_/ }, name)
    t.same(fetched(), [], `${name}: nothing fetched`)
  }
  s3.clear()
  for (const query of [`fileuri=${b64(good)}&fileuri=${b64('s3://labelling/images/secret.png')}`, `fileuri=${b64(good)}&FILEURI=x`]) {
    const res = await call('GET', `/tasks/${task3}/resolve/?${query}`, AUTH)
    t.equal(res.status, 400, `repeated or odd parameters: ${query.slice(0, 40)}`)
    const manager = await call('GET', `/tasks/${task3}/resolve/?${query}`, MANAGER)
    t.ok(manager.status === 400 || manager.status === 200, 'a manager\'s rule lists no query: the resolver still wants one fileuri')
    if (manager.status === 200) t.same(manager.raw, IMAGE)
  }
  // An encoded parameter name is decoded alike by the rule's query check and the resolver.
  const encodedName = await call('GET', `/tasks/${task3}/resolve/?file%75ri=${b64(good)}`, AUTH)
  t.equal(encodedName.status, 200)
  t.same(encodedName.raw, IMAGE)
  t.notOk(fetched().some((f) => f.includes('secret')), 'the unreferenced key was never fetched')
})

t.test('object keys, meta, annotations and another project\'s bucket are no references', async (t) => {
  s3.clear()
  azure.clearLog()
  const cases: Array<[string, string, Record<string, string>]> = [
    ['a key of task data', resolver(hiding, 's3://labelling/images/secret.png'), AUTH],
    ['a nested key', resolver(hiding, 'azure-blob://frames/secret.jpg'), AUTH],
    ['meta and an annotation\'s result', resolver(task3, 's3://labelling/images/secret.png'), MANAGER],
    ['a bucket served to project 4 only', resolver(task3, 's3://only4/x.png'), MANAGER],
    ['the project resolver, for a task file', `/projects/3/resolve/?fileuri=${b64('s3://labelling/images/cat 1.png')}`, AUTH]
  ]
  for (const [name, path, who] of cases) {
    const res = await call('GET', path, who)
    t.equal(res.status, 403, name)
    t.match(res.json(), { code: /^LG_ERR_MEDIA_(NOT_REFERENCED|NO_BACKEND)$/ }, name)
  }
  t.same(fetched(), [])
  t.same(await azure.settle(), [])
})

t.test('keys with characters that SigV4 and Shared Key encode are served byte for byte', async (t) => {
  for (const key of SPECIAL) {
    const fromS3 = await call('GET', resolver(task3, `s3://labelling/${key}`), AUTH)
    t.equal(fromS3.status, 200, `s3 ${key}`)
    t.equal(fromS3.raw.toString(), `s3:${key}`)
    const fromAzure = await call('GET', resolver(task3, `azure-blob://frames/${key}`), AUTH)
    t.equal(fromAzure.status, 200, `azure ${key}`)
    t.equal(fromAzure.raw.toString(), `azure:${key}`)
  }
})

t.test('odd Label Studio answers fail closed and nothing is fetched', async (t) => {
  s3.clear()
  for (const [name, task] of [['project as a string', stringProject], ['no project', noProject],
    ['more than 10,000 URIs', tooMany], ['larger than filters.response_max_bytes', huge]] as Array<[string, number]>) {
    for (const who of [AUTH, MANAGER]) {
      const res = await call('GET', resolver(task, 's3://labelling/images/cat 1.png'), who)
      t.ok(res.status >= 400, `${name}: ${res.status}`)
      t.match(res.json(), { code: /^LG_ERR_/ }, name)
    }
  }
  t.same(fetched(), [])
})

t.test('If-Match and If-Unmodified-Since are evaluated: a failed precondition is 412, whatever the store does', async (t) => {
  // RFC 9110 13.1.1 and 13.1.4: an origin server MUST evaluate them; a false condition is 412.
  // The gateway evaluates them itself too: s3rver ignores both.
  const link = resolver(task3, 's3://labelling/images/cat 1.png')
  const ifMatch = await call('GET', link, { ...AUTH, 'if-match': '"not-the-etag"' })
  t.equal(ifMatch.status, 412, 'If-Match with another entity tag')
  const unmodified = await call('GET', link, { ...AUTH, 'if-unmodified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' })
  t.equal(unmodified.status, 412, 'If-Unmodified-Since before the object was written')
})

t.test('If-None-Match: * of an existing object is 304', async (t) => {
  // RFC 9110 13.1.2: "*" is false when a current representation exists; a GET then gets 304.
  const res = await call('GET', resolver(task3, 's3://labelling/images/cat 1.png'), { ...AUTH, 'if-none-match': '*' })
  t.equal(res.status, 304)
})

t.test('an If-Modified-Since that is not an HTTP-date is ignored', async (t) => {
  // RFC 9110 13.1.3: a recipient MUST ignore If-Modified-Since whose value is not a valid HTTP-date.
  // "3000" is read by Date.parse as the year 3000 and sent on as a valid date.
  const res = await call('GET', resolver(task3, 's3://labelling/images/cat 1.png'), { ...AUTH, 'if-modified-since': '3000' })
  t.equal(res.status, 200)
  t.same(res.raw, IMAGE)
})

t.test('an object stored with Content-Encoding: gzip is sent with its coding', async (t) => {
  const res = await call('GET', resolver(task3, 's3://labelling/gz/hello.txt'), AUTH)
  t.equal(res.status, 200)
  const decoded = res.headers['content-encoding'] === 'gzip' ? 'hello world' : res.raw.toString('latin1')
  t.equal(decoded, 'hello world', 'the client can read the object: either the encoding is named or the bytes are decoded')
})

t.test('a storage that cannot be reached: 502, and its address is in no log line', async (t) => {
  const res = await call('GET', resolver(task3, 's3://gone/x.png'), AUTH)
  t.equal(res.status, 502)
  t.match(res.json(), { code: 'LG_ERR_STORAGE_UNREACHABLE' })
  t.notOk(JSON.stringify(res.json()).includes(String(closedPort)), 'not in the response')
  const lines = gw.logs.lines.filter((l) => l.includes(`127.0.0.1:${closedPort}`))
  t.same(lines, [], 'the endpoint (host and port) of the backend is not logged')
})

t.test('a SAS token and the storage\'s refusal stay inside', async (t) => {
  azure.clearLog()
  const res = await call('GET', resolver(task3, 'azure-blob://sasbox/x.png'), AUTH)
  t.equal(res.status, 502, 'Azurite refuses the made-up SAS')
  t.match(res.json(), { code: 'LG_ERR_STORAGE_DENIED' })
  t.match(await azure.settle(), [{ path: '/devstoreaccount1/sasbox/x.png', status: 403 }])
})

t.test('the signed link of a user bound by Label Studio id stops when the user is disabled', async (t) => {
  // Bindings may name a Label Studio id (README: "user set" takes an e-mail or an id). A session or
  // JWT caller is found by id, but the link names the e-mail, and the disable check reads the
  // binding under the e-mail: there is none, so the link is served to a disabled user's holder.
  t.equal((await gw.cli(['user', 'set', String(THIRD.id), '--role', 'annotator', '--projects', '3'])).code, 0)
  const bearer = { authorization: `Bearer ${upstream.accessToken(THIRD.id, 600)}` }
  const link = await call('GET', `${resolver(task3, 's3://labelling/images/cat 1.png')}&signed_link=1`, bearer)
  t.equal(link.status, 200)
  const path = new URL((link.json() as { url: string }).url).pathname
  t.equal((await call('GET', path)).status, 200, 'the link works')
  t.equal((await gw.cli(['user', 'disable', String(THIRD.id)])).code, 0)
  t.equal((await call('GET', resolver(task3, 's3://labelling/images/cat 1.png'), bearer)).status, 401, 'the user is refused')
  s3.clear()
  const after = await call('GET', path)
  t.equal(after.status, 403, 'the link of a disabled user stops at once (README: Signed links)')
  t.same(fetched(), [], 'and nothing is fetched')
  t.equal((await gw.cli(['user', 'enable', String(THIRD.id)])).code, 0)
})

t.test('a signed link to a long key can be used', async (t) => {
  const minted = await call('GET', `${resolver(task3, `s3://labelling/${LONG}`)}&signed_link=1`, AUTH)
  t.equal(minted.status, 200, 'a link is minted')
  const path = new URL((minted.json() as { url: string }).url).pathname
  const used = await call('GET', path)
  t.equal(used.status, 200, 'the link answers (Fastify\'s maxParamLength of 2048 turns longer links into 401)')
  t.equal(used.raw.toString(), 'long key')
})

t.test('no credential, signature or SAS in any response or log line', async (t) => {
  const logs = gw.logs.lines.join('\n')
  const secrets = [azure.accountKey, 'X-Amz-Signature', 'X-Amz-Credential', 'Signature=', 'SharedKey', 'AWS4-HMAC-SHA256',
    'x-ms-date', 'sig=', FAKE_SIG, 'se=2099', s3.endpoint, azure.endpoint, '127.0.0.1:' + new URL(s3.endpoint).port, env.LG_LINK]
  for (const secret of secrets) {
    t.notOk(logs.includes(secret), `no ${secret.slice(0, 24)} in the logs`)
    t.notOk(answers.some((a) => a.includes(secret)), `no ${secret.slice(0, 24)} in a response`)
  }
  t.notOk(answers.some((a) => /<Error>|SignatureDoesNotMatch|AuthorizationFailure|AuthenticationFailed/.test(a)), 'no storage error body')
})
