import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { buildProject, buildTask } from '../support/labelstudio-standin-data.js'
import { startTestGateway } from '../support/gateway.js'
import { startS3 } from '../support/s3.js'
import { startAzurite } from '../support/azurite.js'
import { mediaClient, resolverPath, s3BackendConfig } from '../support/media.js'
import { encodeFileUri } from '../../src/media/uri.js'

// Task media through the gateway, against real storage emulators: an S3 store (s3rver, which checks
// SigV4) and Azure Blob (Azurite, which checks Shared Key). The gateway answers Label Studio's
// resolver links itself; each test reads the emulators' own request logs to see what reached them.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const s3 = await startS3(t, { buckets: ['labelling', 'elsewhere', 'wrongkey', 'slow'] })
const azure = await startAzurite(t, { containers: ['frames', 'wrongkey'] })
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
// A storage that accepts connections and never answers.
const silent = createServer(() => {})
await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
t.teardown(() => { silent.close() })

const IMAGE = randomBytes(3000)
const FRAME = randomBytes(2000)
const LOGO = randomBytes(500)
await s3.put('labelling', 'images/cat 1.png', IMAGE, 'image/png')
await s3.put('labelling', 'images/secret.png', randomBytes(100), 'image/png')
await s3.put('labelling', 'pages/note.html', '<script>alert(1)</script>', 'text/html')
await s3.put('labelling', 'logo.png', LOGO, 'image/png')
await s3.put('elsewhere', 'images/cat.png', randomBytes(100), 'image/png')
await s3.put('wrongkey', 'a.png', randomBytes(100), 'image/png')
await azure.put('frames', 'video/f001.jpg', FRAME, 'image/jpeg')
await azure.put('wrongkey', 'a.png', randomBytes(100), 'image/png')

upstream.state.projects.insert(buildProject(upstream.state, {
  id: 3, title: 'Media 3', label_config: '<View><Image name="logo" value="s3://labelling/logo.png"/></View>'
}))
upstream.state.projects.insert(buildProject(upstream.state, { id: 4, title: 'Media 4', label_config: '<View/>' }))
const task3 = upstream.state.tasks.insert(buildTask({
  project: 3,
  data: {
    image: 's3://labelling/images/cat 1.png',
    frames: ['azure-blob://frames/video/f001.jpg'],
    page: 's3://labelling/pages/note.html',
    html: '<p>See <img src="s3://labelling/images/missing.png"> and <a href="s3://wrongkey/a.png">this</a></p>',
    more: { nested: [{ uri: 'azure-blob://wrongkey/a.png' }, 's3://slow/a.png'] }
  }
}))
const task4 = upstream.state.tasks.insert(buildTask({
  project: 4, data: { image: 's3://labelling/images/secret.png', frame: 'azure-blob://frames/video/f001.jpg' }
}))

const env = {
  LG_S3_ID: s3.accessKeyId,
  LG_S3_SECRET: s3.secretAccessKey,
  LG_AZ_KEY: azure.accountKey,
  LG_WRONG_SECRET: 'not-the-secret',
  LG_WRONG_AZ_KEY: randomBytes(64).toString('base64'),
  LG_LINK_OLD: randomBytes(32).toString('hex'),
  LG_LINK_NEW: randomBytes(32).toString('hex')
}
const s3Backend = (name: string, bucket: string, secret: string, endpoint = s3.endpoint) =>
  s3BackendConfig(s3, name, bucket, { projects: [3, 4], endpoint, secretEnv: secret })
const azureBackend = (name: string, container: string, key: string) => ({
  name, type: 'azure', account: azure.account, endpoint: azure.endpoint, containers: [container], projects: [3], account_key: { env: key }
})
const storage = {
  headers_timeout: '1s',
  link_keys: [{ id: 'new', secret: { env: 'LG_LINK_NEW' } }, { id: 'old', secret: { env: 'LG_LINK_OLD' } }],
  backends: [
    { ...s3Backend('images', 'labelling', 'LG_S3_SECRET'), signed_links: true },
    azureBackend('frames', 'frames', 'LG_AZ_KEY'),
    s3Backend('s3-wrong-key', 'wrongkey', 'LG_WRONG_SECRET'),
    azureBackend('azure-wrong-key', 'wrongkey', 'LG_WRONG_AZ_KEY'),
    s3Backend('silent', 'slow', 'LG_S3_SECRET', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`)
  ]
}
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url, env, config: { storage } })
const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token, [], '3')
const AUTH = { authorization: `Token ${token}` }
const managerToken = await gw.issueToken(ADMIN.email, 'manager', ADMIN.token)
const MANAGER = { authorization: `Token ${managerToken}` }

/** Every answer the tests saw, headers and bytes, for the check that nothing leaks. */
const answers: string[] = []

const call = mediaClient(gw, answers)
const fileuri = encodeFileUri
const resolver = resolverPath
const s3Fetches = (): string[] => s3.requests.map((r) => `${r.method} ${r.path}`)

t.test('an annotator of project 3 follows the task\'s own link to an S3 image, with ranges and revalidation', async (t) => {
  const task = await call('GET', `/api/tasks/${Number(task3.id)}/`, AUTH)
  t.equal(task.status, 200)
  const link = (task.json() as { data: { image: string } }).data.image
  t.match(link, /^\/tasks\/\d+\/resolve\/\?fileuri=/, 'Label Studio gives a resolver link, not the bucket URI')
  s3.clear()
  const whole = await call('GET', link, AUTH)
  t.equal(whole.status, 200)
  t.same(whole.raw, IMAGE, 'the bytes of the object')
  t.equal(whole.headers['content-type'], 'image/png')
  t.equal(whole.headers['content-length'], '3000')
  t.equal(whole.headers['accept-ranges'], 'bytes')
  t.equal(whole.headers['cache-control'], 'private, no-cache')
  t.equal(whole.headers['x-content-type-options'], 'nosniff')
  t.match(whole.headers['content-security-policy'], /sandbox/)
  t.equal(whole.headers['content-disposition'], undefined, 'an image is shown inline')
  const etag = whole.headers.etag as string
  t.match(etag, /^"[^"]+"$/)
  t.same(s3Fetches(), ['GET /labelling/images/cat%201.png'])
  t.ok(s3.requests.every((r) => r.authorized), 'every fetch was signed')

  const part = await call('GET', link, { ...AUTH, range: 'bytes=100-199' })
  t.equal(part.status, 206)
  t.same(part.raw, IMAGE.subarray(100, 200))
  t.equal(part.headers['content-range'], 'bytes 100-199/3000')

  const tail = await call('GET', link, { ...AUTH, range: 'bytes=-10' })
  t.equal(tail.status, 206, 'a suffix range')
  t.same(tail.raw, IMAGE.subarray(2990))
  t.equal(tail.headers['content-range'], 'bytes 2990-2999/3000')

  const again = await call('GET', link, { ...AUTH, 'if-none-match': etag })
  t.equal(again.status, 304)
  t.equal(again.raw.length, 0)
  t.equal(again.headers.etag, etag)

  const head = await call('HEAD', link, AUTH)
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], '3000')
  t.equal(head.raw.length, 0)
})

t.test('the same annotator streams a frame from Azure Blob, with a range and a 304', async (t) => {
  const link = resolver(Number(task3.id), 'azure-blob://frames/video/f001.jpg')
  azure.clearLog()
  const whole = await call('GET', link, AUTH)
  t.equal(whole.status, 200)
  t.same(whole.raw, FRAME)
  t.equal(whole.headers['content-type'], 'image/jpeg')
  const part = await call('GET', link, { ...AUTH, range: 'bytes=0-9' })
  t.equal(part.status, 206)
  t.same(part.raw, FRAME.subarray(0, 10))
  const tail = await call('GET', link, { ...AUTH, range: 'bytes=-5' })
  t.equal(tail.status, 206, 'a suffix range, which Azure itself does not read')
  t.same(tail.raw, FRAME.subarray(1995))
  const again = await call('GET', link, { ...AUTH, 'if-none-match': whole.headers.etag as string })
  t.equal(again.status, 304)
  const seen = await azure.settle()
  t.ok(seen.length >= 4 && seen.every((r) => r.path === '/devstoreaccount1/frames/video/f001.jpg'))
})

t.test('an object the task does not reference, or a task of another project: 403, and no fetch', async (t) => {
  s3.clear()
  azure.clearLog()
  const cases: Array<[string, string]> = [
    ['same bucket, not referenced', resolver(Number(task3.id), 's3://labelling/images/secret.png')],
    ['a task of project 4', resolver(Number(task4.id), 's3://labelling/images/secret.png')],
    ['a task of project 4, by the project resolver', `/projects/4/resolve/?fileuri=${fileuri('s3://labelling/images/secret.png')}`],
    ['a bucket no backend serves', resolver(Number(task3.id), 's3://elsewhere/images/cat.png')],
    ['a container key the task does not reference', resolver(Number(task3.id), 'azure-blob://frames/video/f002.jpg')],
    ['the presign form', `/tasks/${Number(task3.id)}/presign/?fileuri=${fileuri('s3://labelling/images/secret.png')}`]
  ]
  for (const [name, path] of cases) {
    const res = await call('GET', path, AUTH)
    t.equal(res.status, 403, name)
    t.match(res.json(), { code: /^LG_ERR_(MEDIA|PROJECT)_/, requestId: /./ }, name)
  }
  t.same(s3.requests, [], 'the S3 emulator saw nothing')
  t.same(await azure.settle(), [], 'nor did Azurite')
})

t.test('a page type is sent as an attachment', async (t) => {
  const res = await call('GET', resolver(Number(task3.id), 's3://labelling/pages/note.html'), AUTH)
  t.equal(res.status, 200)
  t.equal(res.headers['content-disposition'], 'attachment')
  t.match(res.headers['content-security-policy'], /sandbox/)
})

t.test('the signature is what the emulators check: a wrong key gets 502, and the emulator refused it', async (t) => {
  s3.clear()
  azure.clearLog()
  const bad = await call('GET', resolver(Number(task3.id), 's3://wrongkey/a.png'), AUTH)
  t.equal(bad.status, 502)
  t.match(bad.json(), { code: 'LG_ERR_STORAGE_DENIED' })
  t.same(s3.requests.map((r) => [r.method, r.path, r.status]), [['GET', '/wrongkey/a.png', 403]])
  const badAzure = await call('GET', resolver(Number(task3.id), 'azure-blob://wrongkey/a.png'), AUTH)
  t.equal(badAzure.status, 502)
  t.match(badAzure.json(), { code: 'LG_ERR_STORAGE_DENIED' })
  t.match(await azure.settle(), [{ method: 'GET', path: '/devstoreaccount1/wrongkey/a.png', status: 403 }])
  t.notMatch(JSON.stringify(bad.json()) + JSON.stringify(badAzure.json()), /SignatureDoesNotMatch|AuthorizationFailure|<Error>/,
    'the storage\'s own error body is not passed on')
})

t.test('a referenced object the bucket lacks is 404; a range past its end is 416', async (t) => {
  const missing = await call('GET', resolver(Number(task3.id), 's3://labelling/images/missing.png'), AUTH)
  t.equal(missing.status, 404, 'a URI inside an HTML value is a reference too')
  t.match(missing.json(), { code: 'LG_ERR_MEDIA_NOT_FOUND' })
  const past = await call('GET', resolver(Number(task3.id), 's3://labelling/images/cat 1.png'), { ...AUTH, range: 'bytes=5000-' })
  t.equal(past.status, 416)
  t.match(past.json(), { code: 'LG_ERR_MEDIA_RANGE_NOT_SATISFIABLE' })
  const several = await call('GET', resolver(Number(task3.id), 's3://labelling/images/cat 1.png'), { ...AUTH, range: 'bytes=0-1,5-6' })
  t.equal(several.status, 200, 'a multi-range request gets the whole object')
  t.equal(several.raw.length, 3000)
})

t.test('a storage that does not answer: 504 after the headers timeout', async (t) => {
  const started = Date.now()
  const res = await call('GET', resolver(Number(task3.id), 's3://slow/a.png'), AUTH)
  t.equal(res.status, 504)
  t.match(res.json(), { code: 'LG_ERR_STORAGE_TIMEOUT' })
  t.ok(Date.now() - started < 5000, 'within storage.headers_timeout (1s) and some slack')
})

t.test('a project\'s files are those its labelling configuration references', async (t) => {
  const logo = await call('GET', `/projects/3/resolve/?fileuri=${fileuri('s3://labelling/logo.png')}`, AUTH)
  t.equal(logo.status, 200)
  t.same(logo.raw, LOGO)
  const taskFile = await call('GET', `/projects/3/presign/?fileuri=${fileuri('s3://labelling/images/cat 1.png')}`, AUTH)
  t.equal(taskFile.status, 403, 'a task\'s file is not the project\'s')
  t.match(taskFile.json(), { code: 'LG_ERR_MEDIA_NOT_REFERENCED' })
})

t.test('a manager reaches every project, and each backend only the projects it lists', async (t) => {
  const image = await call('GET', resolver(Number(task4.id), 's3://labelling/images/secret.png'), MANAGER)
  t.equal(image.status, 200)
  const frame = await call('GET', resolver(Number(task4.id), 'azure-blob://frames/video/f001.jpg'), MANAGER)
  t.equal(frame.status, 403, 'the frames backend serves project 3 only')
  t.match(frame.json(), { code: 'LG_ERR_MEDIA_NO_BACKEND' })
})

t.test('a task\'s references are read with the caller\'s credential and remembered per caller', async (t) => {
  const task = Number(task4.id)
  const lookups = (): Array<string | undefined> => upstream.requests
    .filter((r) => r.headers['x-labelgate-lookup'] === 'task-media').map((r) => r.headers.authorization as string | undefined)
  upstream.clear()
  t.equal((await call('GET', resolver(task, 's3://labelling/images/secret.png'), MANAGER)).status, 200)
  t.same(lookups(), [], 'remembered from the manager\'s request above')
  t.equal((await call('GET', resolver(task, 's3://labelling/images/secret.png'), AUTH)).status, 403)
  t.same(lookups(), [], 'the annotator is refused by the binding before the task is read')
  // Another gateway user whose token carries another Label Studio user's token.
  const other = await gw.issueToken('second-manager@example.com', 'manager', ANNOTATOR.token)
  t.equal((await call('GET', resolver(task, 's3://labelling/images/secret.png'), { authorization: `Token ${other}` })).status, 200)
  t.same(lookups(), [`Token ${ANNOTATOR.token}`], 'another caller is read again, with the Label Studio token they carry')
  t.ok(upstream.requests.every((r) => r.headers['x-labelgate-lookup'] !== undefined), 'nothing is forwarded')
  const line = gw.logs.accessLines().at(-1)
  t.match(line, { media: { via: 'task', backend: 'images', id: task, how: 'lookup', storage: { statusCode: 200 } } })
})

t.test('signed links: minted after every check, usable without a credential, bound to the user and the object', async (t) => {
  const minted = await call('GET', `${resolver(Number(task3.id), 's3://labelling/images/cat 1.png')}&signed_link=1`, AUTH)
  t.equal(minted.status, 200)
  const { url, expires_at: expires } = minted.json() as { url: string, expires_at: string }
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+\/-\/media\/new\./, 'signed with the first key of the ring')
  const life = Date.parse(expires) - Date.now()
  t.ok(life > 240_000 && life <= 300_000, 'expires after storage.link_ttl (5m)')
  const path = new URL(url).pathname
  s3.clear()
  const used = await call('GET', path)
  t.equal(used.status, 200, 'no credential needed')
  t.same(used.raw, IMAGE)
  t.match(used.headers['content-security-policy'], /sandbox/)
  const part = await call('GET', path, { range: 'bytes=0-9' })
  t.equal(part.status, 206)
  t.same(s3.requests.map((r) => r.path), ['/labelling/images/cat%201.png', '/labelling/images/cat%201.png'])
  t.match(gw.logs.accessLines().at(-1), { route: '/-/media/:token', user: ANNOTATOR.email, media: { via: 'link', backend: 'images' } })

  const [id, body, mac] = path.slice('/-/media/'.length).split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>
  const forged = Buffer.from(JSON.stringify({ ...claims, r: 's3://labelling/images/secret.png' })).toString('base64url')
  for (const [name, bad] of [['another object', `${id}.${forged}.${mac}`], ['another key id', `old.${body}.${mac}`],
    ['a changed signature', `${id}.${body}.${mac.slice(0, -2)}AA`], ['no signature', `${id}.${body}`]]) {
    const res = await call('GET', `/-/media/${bad as string}`)
    t.equal(res.status, 403, name as string)
    t.match(res.json(), { code: 'LG_ERR_MEDIA_LINK_INVALID' }, name as string)
  }
  const frames = await call('GET', `${resolver(Number(task3.id), 'azure-blob://frames/video/f001.jpg')}&signed_link=1`, AUTH)
  t.equal(frames.status, 403, 'a backend without signed_links gives none')
  const refused = await call('GET', `${resolver(Number(task3.id), 's3://labelling/images/secret.png')}&signed_link=1`, AUTH)
  t.equal(refused.status, 403, 'no link to a file the task does not reference')
  t.match(refused.json(), { code: 'LG_ERR_MEDIA_NOT_REFERENCED' })

  t.equal((await gw.cli(['user', 'disable', ANNOTATOR.email])).code, 0)
  const disabled = await call('GET', path)
  t.equal(disabled.status, 403, 'the link of a disabled user stops at once')
  t.match(disabled.json(), { code: 'LG_ERR_MEDIA_LINK_INVALID' })
  t.equal((await gw.cli(['user', 'enable', ANNOTATOR.email])).code, 0)
  t.equal((await call('GET', path)).status, 200, 'and works again when the user is enabled')
})

t.test('without a credential, or with a role the rule does not grant, nothing is read', async (t) => {
  upstream.clear()
  s3.clear()
  const anonymous = await call('GET', resolver(Number(task3.id), 's3://labelling/images/cat 1.png'))
  t.equal(anonymous.status, 401)
  t.same(upstream.requests, [])
  t.same(s3.requests, [])
})

t.test('no storage credential or signed URL reaches a response or a log line', async (t) => {
  t.ok(answers.length > 40)
  const logs = gw.logs.lines.join('\n')
  const secrets = [azure.accountKey, 'X-Amz-Signature', 'Signature=', 'SharedKey', 'AWS4-HMAC-SHA256', 'x-ms-date',
    s3.endpoint, azure.endpoint, '127.0.0.1:' + new URL(s3.endpoint).port, 'sig=', 'se=']
  for (const secret of secrets) {
    t.notOk(logs.includes(secret), `no ${secret.slice(0, 20)} in the logs`)
    t.notOk(answers.some((a) => a.includes(secret)), `no ${secret.slice(0, 20)} in a response`)
  }
  // s3rver's development key is the word S3RVER: it must not appear either.
  t.notOk(logs.includes(s3.secretAccessKey) || answers.some((a) => a.includes(s3.secretAccessKey)))
  const metrics = await call('GET', '/-/metrics')
  t.match(metrics.raw.toString(), /labelgate_storage_requests_total\{backend="images",status="206"\} [1-9]/)
  t.match(metrics.raw.toString(), /labelgate_storage_requests_total\{backend="s3-wrong-key",status="403"\} 1/)
  t.match(metrics.raw.toString(), /labelgate_storage_requests_total\{backend="silent",status="error"\} 1/)
  const media = gw.logs.accessLines().filter((line) => line.media !== undefined)
  t.ok(media.length > 10)
  t.match(media[0], { media: { via: 'task', backend: 'images', how: /lookup|cache/, storage: { statusCode: 200 } } })
})
