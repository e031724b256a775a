import t from 'tap'
import { randomBytes } from 'node:crypto'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { buildProject, buildTask } from '../support/labelstudio-standin-data.js'
import { request } from 'undici'
import { startTestGateway } from '../support/gateway.js'
import { startS3 } from '../support/s3.js'
import { startAzurite } from '../support/azurite.js'

// Task media through the gateway, against real storage emulators: an S3 store (s3rver, which checks
// SigV4) and Azure Blob (Azurite, which checks Shared Key). The gateway answers Label Studio's
// resolver links itself; each test reads the emulators' own request logs to see what reached them.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const s3 = await startS3(t, { buckets: ['labelling', 'elsewhere'] })
const azure = await startAzurite(t, { containers: ['frames'] })
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())

const IMAGE = randomBytes(3000)
const FRAME = randomBytes(2000)
await s3.put('labelling', 'images/cat 1.png', IMAGE, 'image/png')
await s3.put('labelling', 'images/secret.png', randomBytes(100), 'image/png')
await s3.put('labelling', 'pages/note.html', '<script>alert(1)</script>', 'text/html')
await s3.put('elsewhere', 'images/cat.png', randomBytes(100), 'image/png')
await azure.put('frames', 'video/f001.jpg', FRAME, 'image/jpeg')

for (const id of [3, 4]) {
  upstream.state.projects.insert(buildProject(upstream.state, { id, title: `Media ${id}`, label_config: '<View/>' }))
}
const task3 = upstream.state.tasks.insert(buildTask({
  project: 3,
  data: {
    image: 's3://labelling/images/cat 1.png',
    frames: ['azure-blob://frames/video/f001.jpg'],
    page: 's3://labelling/pages/note.html'
  }
}))
const task4 = upstream.state.tasks.insert(buildTask({ project: 4, data: { image: 's3://labelling/images/secret.png' } }))

const env = { LG_S3_ID: s3.accessKeyId, LG_S3_SECRET: s3.secretAccessKey, LG_AZ_KEY: azure.accountKey }
const storage = {
  backends: [
    {
      name: 'images',
      type: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      buckets: ['labelling'],
      projects: [3, 4],
      access_key_id: { env: 'LG_S3_ID' },
      secret_access_key: { env: 'LG_S3_SECRET' }
    },
    {
      name: 'frames',
      type: 'azure',
      account: azure.account,
      endpoint: azure.endpoint,
      containers: ['frames'],
      projects: [3],
      account_key: { env: 'LG_AZ_KEY' }
    }
  ]
}
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url, env, config: { storage } })
const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token, [], '3')
const AUTH = { authorization: `Token ${token}` }

/** Every answer the tests saw, headers and bytes, for the check that nothing leaks. */
const answers: string[] = []

async function call (method: string, path: string, headers: Record<string, string> = {}) {
  const res = await request(gw.url + path, { method: method as 'GET', headers, dispatcher: gw.dispatcher })
  const raw = Buffer.from(await res.body.arrayBuffer())
  answers.push(JSON.stringify(res.headers), raw.toString('latin1'))
  return { status: res.statusCode, headers: res.headers, raw, json: () => JSON.parse(raw.toString('utf8')) as Record<string, unknown> }
}

const fileuri = (uri: string): string => Buffer.from(uri).toString('base64url')
const resolver = (task: number, uri: string): string => `/tasks/${task}/resolve/?fileuri=${fileuri(uri)}`
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

t.test('no storage credential or signed URL reaches a response or a log line', async (t) => {
  t.ok(answers.length > 20)
  const logs = gw.logs.lines.join('\n')
  const secrets = [azure.accountKey, 'X-Amz-Signature', 'Signature=', 'SharedKey', 'AWS4-HMAC-SHA256', 'x-ms-date',
    s3.endpoint, azure.endpoint, '127.0.0.1:' + new URL(s3.endpoint).port, 'sig=', 'se=']
  for (const secret of secrets) {
    t.notOk(logs.includes(secret), `no ${secret.slice(0, 20)} in the logs`)
    t.notOk(answers.some((a) => a.includes(secret)), `no ${secret.slice(0, 20)} in a response`)
  }
  // s3rver's development key is the word S3RVER: it must not appear either.
  t.notOk(logs.includes(s3.secretAccessKey) || answers.some((a) => a.includes(s3.secretAccessKey)))
  const media = gw.logs.accessLines().filter((line) => line.media !== undefined)
  t.ok(media.length > 10)
  t.match(media[0], { media: { via: 'task', backend: 'images', how: /lookup|cache/, storage: { statusCode: 200 } } })
})
