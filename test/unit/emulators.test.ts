import t from 'tap'
import { randomBytes } from 'node:crypto'
import aws4 from 'aws4'
import { request } from 'undici'
import { s3ObjectPath, startS3 } from '../support/s3.js'
import { AZURE_API_VERSION, azurePath, sharedKeyAuthorization, startAzurite } from '../support/azurite.js'

// The storage emulators the media tests run against: each stores what it is given, serves it back
// to a correctly signed GET (ranges included), refuses a GET signed with the wrong secret, and
// shows every request it got in its own log.

const BODY = Buffer.from('0123456789 emulated media \u00e9\u00e8')
const KEY = 'dir/a b.bin'

async function read (url: string, headers: Record<string, string>) {
  const res = await request(url, { headers })
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
}

t.test('s3rver: SigV4 PUT and GET, a range, a wrong secret refused, the request log', async (t) => {
  const s3 = await startS3(t, { buckets: ['media'] })
  await s3.put('media', KEY, BODY, 'application/octet-stream')
  const path = s3ObjectPath('media', KEY)
  const get = async (headers: Record<string, string> = {}, secretAccessKey = s3.secretAccessKey) => {
    const signed = aws4.sign({ host: new URL(s3.endpoint).host, path, service: 's3', region: s3.region, headers },
      { accessKeyId: s3.accessKeyId, secretAccessKey })
    return await read(s3.endpoint + path, signed.headers as Record<string, string>)
  }

  const full = await get()
  t.equal(full.status, 200)
  t.ok(full.body.equals(BODY), 'the same bytes')
  t.equal(full.headers['content-type'], 'application/octet-stream')
  const part = await get({ Range: 'bytes=2-5' })
  t.equal(part.status, 206)
  t.ok(part.body.equals(BODY.subarray(2, 6)), 'bytes 2 to 5')
  t.equal(part.headers['content-range'], `bytes 2-5/${BODY.length}`)
  const wrong = await get({}, 'not-the-secret')
  t.equal(wrong.status, 403)
  t.match(wrong.body.toString(), /<Code>SignatureDoesNotMatch<\/Code>/)

  t.same(s3.requests.map((r) => [r.method, r.path, r.query, r.authorized, r.status]), [
    ['PUT', '/media/dir/a%20b.bin', '', true, 200],
    ['GET', '/media/dir/a%20b.bin', '', true, 200],
    ['GET', '/media/dir/a%20b.bin', '', true, 206],
    ['GET', '/media/dir/a%20b.bin', '', true, 403]
  ])
  s3.clear()
  t.same(s3.requests, [])
})

t.test('Azurite: Shared Key PUT and GET, a range, a wrong key refused, the request log', async (t) => {
  const az = await startAzurite(t, { containers: ['media'] })
  t.same(az.requests(), [], 'start-up requests are not in the log')
  await az.put('media', KEY, BODY, 'application/octet-stream')
  const url = new URL(`${az.endpoint}/${azurePath('media', KEY)}`)
  const get = async (headers: Record<string, string> = {}, key = az.accountKey) => {
    const all: Record<string, string> = { 'x-ms-date': new Date().toUTCString(), 'x-ms-version': AZURE_API_VERSION, ...headers }
    all.authorization = sharedKeyAuthorization({ method: 'GET', url, headers: all, account: az.account, key })
    return await read(url.href, all)
  }

  const full = await get()
  t.equal(full.status, 200)
  t.ok(full.body.equals(BODY), 'the same bytes')
  t.equal(full.headers['content-type'], 'application/octet-stream')
  const part = await get({ Range: 'bytes=2-5' })
  t.equal(part.status, 206)
  t.ok(part.body.equals(BODY.subarray(2, 6)), 'bytes 2 to 5')
  t.equal(part.headers['content-range'], `bytes 2-5/${BODY.length}`)
  const wrong = await get({}, randomBytes(64).toString('base64'))
  t.equal(wrong.status, 403)
  t.match(wrong.body.toString(), /<Code>AuthorizationFailure<\/Code>/)

  t.same((await az.settle()).map((r) => [r.method, r.path, r.query, r.status]), [
    ['PUT', '/devstoreaccount1/media/dir/a%20b.bin', '', 201],
    ['GET', '/devstoreaccount1/media/dir/a%20b.bin', '', 200],
    ['GET', '/devstoreaccount1/media/dir/a%20b.bin', '', 206],
    ['GET', '/devstoreaccount1/media/dir/a%20b.bin', '', 403]
  ])
  az.clearLog()
  t.same(az.requests(), [])
})
