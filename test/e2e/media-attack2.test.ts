import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { createServer, request as httpRequest } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { mkdirSync, readdirSync, readFileSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { buildProject, buildTask } from '../support/labelstudio-standin-data.js'
import { startTestGateway } from '../support/gateway.js'
import { startS3 } from '../support/s3.js'
import { startAzurite } from '../support/azurite.js'
import { startRedis } from '../support/redis.js'
import { tempDir } from '../support/tmp.js'
import { localFilesPath, mediaClient, resolverPath, s3BackendConfig } from '../support/media.js'

// Second attack on the gateway's media: storages and clients that misbehave mid-stream, HTTP's
// conditionals and ranges against what the storage answers, signed links after a binding changes,
// and an identity store that goes away. The gateway runs in this process: an unhandled stream
// error would end the file. Each test that shows a fault says what HTTP or the README expects.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const redis = await startRedis(t)
const s3 = await startS3(t, { buckets: ['labelling', 'swapped'] })
const azure = await startAzurite(t, { containers: ['frames'] })
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())

const BIG = randomBytes(8 * 1024 * 1024)
await s3.put('labelling', 'big.bin', BIG, 'video/mp4')
await s3.put('labelling', 'p4.png', Buffer.from('PROJECT-4-IMAGE'), 'image/png')
await azure.put('frames', 'big.bin', BIG, 'video/mp4')
await s3.put('swapped', 'clip.bin', Buffer.alloc(1000, 'a'), 'video/mp4')

const dir = tempDir(t, 'labelgate-media-attack2-')
const files = join(dir, 'files')
mkdirSync(join(files, 'p3'), { recursive: true })
writeFileSync(join(files, 'p3/big.mp4'), BIG)

// A storage speaking raw HTTP/1.1 that misbehaves in the way the object's name says.
const fake = createNetServer((socket: Socket) => {
  let buffered = ''
  socket.on('error', () => {})
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1')
    for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
      const [line = ''] = buffered.slice(0, end).split('\r\n')
      buffered = buffered.slice(end + 4)
      const path = line.split(' ')[1] ?? ''
      answerFake(socket, path.split('/').at(-1) ?? '')
    }
  })
})
function answerFake (socket: Socket, name: string): void {
  const ok = (headers: string, body = ''): void => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n${headers}\r\n${body}`)
  }
  switch (name) {
    case 'reset.png': // resets the connection mid-body
      ok('Content-Length: 1000000\r\n', 'x'.repeat(1000))
      setTimeout(() => socket.resetAndDestroy(), 30)
      break
    case 'instant-reset.png': // resets right after the headers
      ok('Content-Length: 100000\r\n', 'x'.repeat(10))
      socket.resetAndDestroy()
      break
    case 'short.png': // fewer bytes than its Content-Length, then a clean close
      ok('Content-Length: 1000\r\n', 'x'.repeat(500))
      setTimeout(() => socket.end(), 30)
      break
    case 'stall.png': // 200, some bytes, then silence past headers_timeout
      ok('Content-Length: 1000\r\n', 'x'.repeat(100))
      break
    case 'head-body.png': // a body after a HEAD's headers
      ok('Content-Length: 10\r\nETag: "h"\r\n', '0123456789')
      break
    case 'not-modified-body.png': // a 304 with a body
      socket.write('HTTP/1.1 304 Not Modified\r\nETag: "n"\r\nContent-Length: 10\r\n\r\n0123456789')
      break
    case 'no-content-range.png': // 206 without Content-Range
      socket.write('HTTP/1.1 206 Partial Content\r\nContent-Type: image/png\r\nContent-Length: 3\r\n\r\nabc')
      break
    default:
      socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
  }
}
await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
t.teardown(() => { fake.close() })

// A proxy in front of s3rver that replaces s3://swapped/clip.bin just before the first GET that
// carries If-Match: the object changes between the gateway's HEAD and its GET. s3rver, like some
// S3-compatible stores, does not honour If-Match; the signature still holds (same Host header).
const V2 = Buffer.alloc(2000, 'b')
let swapArmed = false
const swapProxy = createServer((req, res) => {
  const forward = (): void => {
    const out = httpRequest(s3.endpoint + (req.url ?? '/'), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    out.on('error', () => res.destroy())
    req.pipe(out)
  }
  if (swapArmed && req.method === 'GET' && req.headers['if-match'] !== undefined) {
    swapArmed = false
    s3.put('swapped', 'clip.bin', V2, 'video/mp4').then(forward, () => res.destroy())
  } else {
    forward()
  }
})
await new Promise<void>((resolve) => swapProxy.listen(0, '127.0.0.1', resolve))
t.teardown(() => { swapProxy.close() })

upstream.state.projects.insert(buildProject(upstream.state, { id: 3, title: 'Attack2 3', label_config: '<View/>' }))
upstream.state.projects.insert(buildProject(upstream.state, { id: 4, title: 'Attack2 4', label_config: '<View/>' }))
const FAKE = ['reset', 'instant-reset', 'short', 'stall', 'head-body', 'not-modified-body', 'no-content-range']
const task3 = Number(upstream.state.tasks.insert(buildTask({
  project: 3,
  data: {
    video: 's3://labelling/big.bin',
    frames: 'azure-blob://frames/big.bin',
    clip: 's3://swapped/clip.bin',
    replaced: 's3://labelling/replaced.png',
    fake: FAKE.map((name) => `s3://fake/${name}.png`)
  }
})).id)
const task4 = Number(upstream.state.tasks.insert(buildTask({ project: 4, data: { image: 's3://labelling/p4.png' } })).id)

const env = {
  LG_S3_ID: s3.accessKeyId,
  LG_S3_SECRET: s3.secretAccessKey,
  LG_AZ_KEY: azure.accountKey,
  LG_LINK: randomBytes(32).toString('hex')
}
const s3Backend = (name: string, bucket: string, endpoint: string, projects: number[]) =>
  s3BackendConfig(s3, name, bucket, { projects, endpoint })
const storage = {
  headers_timeout: '1s',
  timeout: '5s',
  local_files_root: files,
  link_keys: [{ id: 'k1', secret: { env: 'LG_LINK' } }],
  backends: [
    { ...s3Backend('images', 'labelling', s3.endpoint, [3, 4]), signed_links: true },
    s3Backend('swap', 'swapped', `http://127.0.0.1:${(swapProxy.address() as AddressInfo).port}`, [3]),
    s3Backend('fake', 'fake', `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, [3]),
    { name: 'frames', type: 'azure', account: azure.account, endpoint: azure.endpoint, containers: ['frames'], projects: [3], account_key: { env: 'LG_AZ_KEY' } },
    { name: 'p3', type: 'local', path: join(files, 'p3'), projects: [3] }
  ]
}
const gw = await startTestGateway(t, { store: 'redis', redis, upstreamUrl: upstream.url, env, config: { storage } })
const TOKEN = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token, [], '3')
const AUTH = { authorization: `Token ${TOKEN}` }

const call = mediaClient(gw)
const resolver = resolverPath
const local = localFilesPath
const VIDEO = resolver(task3, 's3://labelling/big.bin')
const FRAMES = resolver(task3, 'azure-blob://frames/big.bin')
const LOCAL = local('p3/big.mp4')

/** A GET over raw TLS; the socket is destroyed once `after` bytes of the answer came (0: right after sending). */
async function abortAfter (path: string, after: number, extra: string[] = []): Promise<number> {
  const socket = tlsConnect({ host: '127.0.0.1', port: gw.gateway.port, servername: 'localhost', ca: readFileSync(gw.ca) })
  return await new Promise((resolve) => {
    let got = 0
    socket.on('error', () => resolve(got))
    socket.on('close', () => resolve(got))
    socket.on('secureConnect', () => {
      socket.write([`GET ${path} HTTP/1.1`, 'Host: localhost', `Authorization: Token ${TOKEN}`, ...extra, '', ''].join('\r\n'))
      if (after === 0) setImmediate(() => socket.destroy())
    })
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length
      if (got >= after) socket.destroy()
    })
  })
}

/** Descriptors this process holds on files under the test's folder. */
function openLocalFiles (): number {
  let count = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) count++
    } catch {}
  }
  return count
}

async function stillServes (t: Test): Promise<void> {
  t.equal((await call('GET', '/-/healthz')).status, 200, 'healthz answers')
  const part = await call('GET', VIDEO, { ...AUTH, range: 'bytes=0-9' })
  t.equal(part.status, 206, 'a media request is served')
  t.same(part.raw, BIG.subarray(0, 10))
}

t.test('held: clients that leave mid-stream and storages that fail mid-body do not stop the gateway', async (t) => {
  const jobs: Array<Promise<unknown>> = []
  for (const path of [VIDEO, FRAMES, LOCAL]) {
    for (const after of [0, 1, 500, 70_000]) jobs.push(abortAfter(path, after))
    for (let i = 0; i < 20; i++) jobs.push(abortAfter(path, 1000, ['Range: bytes=-3000000']))
  }
  await Promise.all(jobs)
  for (const name of ['reset', 'instant-reset', 'short', 'stall']) {
    const res = await call('GET', resolver(task3, `s3://fake/${name}.png`), AUTH)
    t.ok(res.status >= 500 || res.error !== null, `${name}: the client learns the body is cut (${res.status}, ${String(res.error)})`)
  }
  const head = await call('HEAD', resolver(task3, 's3://fake/head-body.png'), AUTH)
  t.equal(head.status, 200, 'a HEAD answered with a body')
  t.equal(head.raw.length, 0)
  const notModified = await call('GET', resolver(task3, 's3://fake/not-modified-body.png'), { ...AUTH, 'if-none-match': '"n"' })
  // The gateway sends a storage no conditional, so a 304 answers nothing it asked: a storage fault.
  t.equal(notModified.status, 502, 'a 304 the gateway did not ask for, with a body')
  t.match(notModified.raw.toString(), /LG_ERR_STORAGE_FAILED/)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await stillServes(t)
})

t.test('held: no descriptor of a local file is left open after 200 requests, aborted and refused ones included', async (t) => {
  const before = openLocalFiles()
  const jobs: Array<Promise<unknown>> = []
  for (let i = 0; i < 200; i++) {
    const kind = i % 7
    if (kind === 0) jobs.push(abortAfter(LOCAL, 0))
    else if (kind === 1) jobs.push(abortAfter(LOCAL, 1000))
    else if (kind === 2) jobs.push(call('GET', LOCAL, { ...AUTH, 'if-match': '"other"' }))
    else if (kind === 3) jobs.push(call('HEAD', LOCAL, AUTH))
    else if (kind === 4) jobs.push(call('GET', LOCAL, { ...AUTH, range: `bytes=${BIG.length}-` }))
    else if (kind === 5) jobs.push(call('GET', LOCAL, { ...AUTH, 'if-none-match': '*' }))
    else jobs.push(call('GET', LOCAL, { ...AUTH, range: 'bytes=-10' }))
  }
  await Promise.all(jobs)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(openLocalFiles(), before, 'as many descriptors as before')
  await stillServes(t)
})

t.test('a stale cached copy is confirmed as current: If-Modified-Since goes to the store beside a non-matching If-None-Match', async (t) => {
  // RFC 9110 13.1.3: a recipient MUST ignore If-Modified-Since when the request has If-None-Match.
  // A browser revalidates with both. The object was replaced in the same second as the copy it
  // holds, so only the entity tag tells the versions apart. s3rver answers 304 on the date; the
  // gateway passes that 304 on without evaluating If-None-Match, and fills in the client's own old
  // tag as the ETag, telling the client that its old copy is the current one.
  await s3.put('labelling', 'replaced.png', Buffer.from('VERSION-1'), 'image/png')
  const link = resolver(task3, 's3://labelling/replaced.png')
  const old = await call('GET', link, AUTH)
  t.equal(old.raw.toString(), 'VERSION-1')
  await s3.put('labelling', 'replaced.png', Buffer.from('VERSION-2'), 'image/png')
  const now = await call('GET', link, AUTH)
  t.not(now.headers.etag, old.headers.etag, 'the object has a new entity tag')
  const revalidated = await call('GET', link, {
    ...AUTH, 'if-none-match': String(old.headers.etag), 'if-modified-since': String(now.headers['last-modified'])
  })
  t.equal(revalidated.status, 200, 'the held tag names another version: 200 with the current bytes')
  t.equal(revalidated.raw.toString(), 'VERSION-2')
  t.not(revalidated.headers.etag, old.headers.etag, 'the old version\'s tag is never confirmed')
})

t.test('a failed If-Match or If-Unmodified-Since is 412 even when the store answers 304', async (t) => {
  // RFC 9110 13.2.2: If-Match (or If-Unmodified-Since) is evaluated before If-None-Match; false is 412.
  // The gateway re-evaluates conditionals on the store's 200 (README: "not every store honours them
  // all"), but a 304 from a store that ignores If-Match (s3rver) is passed on as it is.
  const first = await call('GET', VIDEO, AUTH)
  const etag = String(first.headers.etag)
  const ifMatch = await call('GET', VIDEO, { ...AUTH, 'if-match': '"another-version"', 'if-none-match': etag })
  t.equal(ifMatch.status, 412, 'If-Match names another version')
  const unmodified = await call('GET', VIDEO, {
    ...AUTH, 'if-unmodified-since': 'Mon, 01 Jan 2001 00:00:00 GMT', 'if-none-match': etag
  })
  t.equal(unmodified.status, 412, 'If-Unmodified-Since before the object was written')
})

t.test('a 304 carries the ETag a 200 would carry', async (t) => {
  // RFC 9110 15.4.5: a 304 MUST carry the ETag that a 200 to the same request would. Answered to
  // If-Modified-Since alone, the stores' 304 has none, and the gateway adds one only for If-None-Match.
  for (const [name, path] of [['S3', VIDEO], ['Azure', FRAMES]] as Array<[string, string]>) {
    const first = await call('GET', path, AUTH)
    t.equal(first.status, 200)
    const again = await call('GET', path, { ...AUTH, 'if-modified-since': String(first.headers['last-modified']) })
    t.equal(again.status, 304, `${name}: not modified`)
    t.equal(again.headers.etag, first.headers.etag, `${name}: the 304 names the version`)
  }
})

t.test('a suffix range read across a change of the object is 412 or the suffix of one version', async (t) => {
  // README: for `bytes=-n` the gateway asks the size (HEAD) and sends an explicit range with If-Match;
  // errors: LG_ERR_MEDIA_PRECONDITION_FAILED "the object changed while a suffix range was being read".
  // Here the object grows from 1,000 to 2,000 bytes between the HEAD and the GET, and the store
  // ignores If-Match: the client asked for the last 100 bytes and gets bytes 900-999 of the new version.
  swapArmed = true
  const res = await call('GET', resolver(task3, 's3://swapped/clip.bin'), { ...AUTH, range: 'bytes=-100' })
  t.equal(swapArmed, false, 'the object was replaced between the HEAD and the GET')
  const range = String(res.headers['content-range'])
  const total = Number(range.split('/')[1])
  t.ok(res.status === 412 || (res.status === 206 && range === `bytes ${total - 100}-${total - 1}/${total}`),
    `412, or the last 100 bytes of the version sent (got ${res.status} ${range})`)
})

t.test('a 206 from a store without Content-Range is not passed on as a 206 without one', async (t) => {
  // RFC 9110 15.3.7: a single-part 206 MUST carry Content-Range. The gateway drops a Content-Range
  // it cannot read but keeps the status, so the client gets part of an object with no way to tell which.
  for (const headers of [AUTH, { ...AUTH, range: 'bytes=0-2' }]) {
    const res = await call('GET', resolver(task3, 's3://fake/no-content-range.png'), headers)
    t.notOk(res.status === 206 && res.headers['content-range'] === undefined,
      `no 206 without Content-Range (got ${res.status}, range asked: ${'range' in headers})`)
  }
})

t.test('a local file cut short while it is sent closes the connection at once', async (t) => {
  // A storage that sends fewer bytes than its Content-Length gets the client's connection closed at
  // once. A local file that shrinks while it is read ends the response short of the Content-Length
  // taken from stat on a kept-alive connection: the client waits until the keep-alive timeout.
  const path = join(files, 'p3/shrinking.mp4')
  writeFileSync(path, Buffer.alloc(32 * 1024 * 1024, 7))
  const res = await request(gw.url + local('p3/shrinking.mp4'), { headers: AUTH, dispatcher: gw.dispatcher })
  t.equal(res.statusCode, 200)
  let got = 0
  let cutAt = 0
  let error: string | null = null
  try {
    for await (const chunk of res.body) {
      got += (chunk as Buffer).length
      if (cutAt === 0) {
        truncateSync(path, 0)
        cutAt = Date.now()
      }
    }
  } catch (err) {
    error = (err as Error).message
  }
  const waited = Date.now() - cutAt
  t.ok(got < 32 * 1024 * 1024, `the body is short of its Content-Length (${got} bytes)`)
  t.not(error, null, 'the client learns that the body is cut')
  t.ok(waited < 2000, `and learns it at once, not after the keep-alive timeout (${waited} ms)`)
})

t.test('the signed link of a caller whose binding reached every project stops when the binding narrows', async (t) => {
  // README: "a bound caller's binding must still reach the project". A link minted by an annotator
  // bound to `--projects all`, or by a manager, carries no project (p: null), so it keeps serving
  // project 4's object after the binding is narrowed to project 3, though the user is refused.
  const file = resolver(task4, 's3://labelling/p4.png')
  for (const [user, role, projects] of [['wide@example.com', 'annotator', 'all'], ['boss@example.com', 'manager', 'all']]) {
    const token = await gw.issueToken(user as string, role as string, ADMIN.token, [], projects)
    const minted = await call('GET', `${file}&signed_link=1`, { authorization: `Token ${token}` })
    t.equal(minted.status, 200, `${user as string}: a link is minted`)
    const path = new URL((minted.json() as { url: string }).url).pathname
    t.equal((await call('GET', path)).raw.toString(), 'PROJECT-4-IMAGE', 'the link works')
    t.equal((await gw.cli(['user', 'set', user as string, '--role', 'annotator', '--projects', '3'])).code, 0)
    t.equal((await call('GET', file, { authorization: `Token ${token}` })).status, 403, 'the user is refused project 4')
    const after = await call('GET', path)
    t.equal(after.status, 403, `${user as string}: the link stops with the binding`)
    t.notOk(after.raw.includes(Buffer.from('PROJECT-4-IMAGE')), 'project 4\'s object is not sent')
  }
})

t.test('a signed link stops when its backend no longer serves the link\'s project', async (t) => {
  // The link route re-reads the configuration ("its backend must still give links", and the bucket
  // must still be the backend's), but not the backend's `projects`: after an operator takes project 3
  // off the backend and restarts, a link minted for project 3 still serves its objects.
  const minted = await call('GET', `${resolver(task3, 's3://labelling/big.bin')}&signed_link=1`, AUTH)
  const path = new URL((minted.json() as { url: string }).url).pathname
  const claims = JSON.parse(Buffer.from(path.split('.')[1] ?? '', 'base64url').toString()) as { p: unknown }
  t.equal(claims.p, 3, 'the link names project 3')
  const restarted = await startTestGateway(t, {
    store: 'redis',
    redis,
    encryptionKey: gw.env.LG_TEST_KEY ?? '',
    upstreamUrl: upstream.url,
    env,
    config: { storage: { ...storage, backends: [{ ...s3Backend('images', 'labelling', s3.endpoint, [4]), signed_links: true }] } }
  })
  const direct = await request(restarted.url + resolver(task3, 's3://labelling/big.bin'), { headers: AUTH, dispatcher: restarted.dispatcher })
  await direct.body.dump()
  t.equal(direct.statusCode, 403, 'the resolver refuses project 3\'s object on that backend')
  const res = await request(restarted.url + path, { headers: { range: 'bytes=0-9' }, dispatcher: restarted.dispatcher })
  const body = Buffer.from(await res.body.arrayBuffer())
  t.equal(res.statusCode, 403, `so does the link (${res.statusCode} ${body.length} bytes)`)
  t.notOk(body.equals(BIG.subarray(0, 10)), 'no bytes of the object')
})

t.test('held: references are per Label Studio credential, and the binding is applied after the cache', async (t) => {
  const x = { authorization: `Token ${await gw.issueToken('x@example.com', 'annotator', ANNOTATOR.token, [], '3')}` }
  const y = { authorization: `Token ${await gw.issueToken('y@example.com', 'annotator', ANNOTATOR.token, [], '4')}` }
  const p3 = resolver(task3, 's3://labelling/big.bin')
  t.equal((await call('HEAD', p3, x)).status, 200, 'x, bound to project 3, fills the cache')
  t.equal((await call('HEAD', p3, y)).status, 403, 'y shares the Label Studio token but is bound to project 4')
  t.equal((await call('GET', resolver(task4, 's3://labelling/p4.png'), x)).status, 403)
})

t.test('held: with the identity store gone, media and links fail closed (503)', async (t) => {
  const minted = await call('GET', `${VIDEO}&signed_link=1`, AUTH)
  const link = new URL((minted.json() as { url: string }).url).pathname
  // A caller with another Label Studio credential, whose references are not cached yet: the task is
  // read while the store goes away.
  const fresh = { authorization: `Token ${await gw.issueToken('fresh@example.com', 'annotator', ADMIN.token, [], '3')}` }
  t.equal((await call('GET', '/-/healthz', fresh)).status, 200)
  upstream.behaviour.delayMs = 800
  const pending = call('GET', FRAMES, { ...fresh, range: 'bytes=0-0' })
  await new Promise((resolve) => setTimeout(resolve, 300))
  await redis.stop()
  const midway = await pending
  upstream.behaviour.delayMs = 0
  t.equal(midway.status, 503, `stopped while the task was read (${midway.status} ${midway.raw.length} bytes)`)
  t.match(midway.json(), { code: 'LG_ERR_TOKEN_STORE_UNAVAILABLE' })
  for (const [name, path] of [['resolver', VIDEO], ['link', link]] as Array<[string, string]>) {
    const res = await call('GET', path, name === 'link' ? {} : AUTH)
    t.equal(res.status, 503, name)
    t.equal(res.raw.includes(BIG.subarray(0, 64)), false, `${name}: no bytes of the object`)
  }
  t.equal((await call('GET', '/-/healthz')).status, 200)
  await redis.start()
})
