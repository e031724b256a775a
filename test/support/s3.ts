import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import aws4 from 'aws4'
import { request } from 'undici'
import { tempDir } from './tmp.js'

// A real S3 emulator for one test file: @20minutes/s3rver (a Koa app that checks SigV4 signatures)
// run in-process on a loopback port, behind our own http.Server so that the test sees every
// request the emulator got. s3rver also serves unsigned requests (as anonymous), so a test that
// wants to prove a signature was checked must also send one made with a wrong secret. It does not
// compare x-amz-content-sha256 with the body, nor x-amz-date with its clock.

export interface S3Request {
  method: string
  /** The request path as sent (still percent-encoded), without the query. */
  path: string
  /** The raw query string without the leading '?' ('' when there is none). */
  query: string
  /** The request carried an Authorization header or an X-Amz-Signature query parameter. */
  authorized: boolean
  /** The response status, set when the response has finished (0 until then). */
  status: number
}

export interface TestS3 {
  endpoint: string
  region: 'us-east-1'
  accessKeyId: string
  secretAccessKey: string
  requests: S3Request[]
  /** Uploads one object with a SigV4-signed, path-style PUT. */
  put: (bucket: string, key: string, body: Buffer | string, contentType: string) => Promise<void>
  /** Empties `requests`. */
  clear: () => void
  stop: () => Promise<void>
}

interface S3rverApp {
  configureBuckets: () => Promise<unknown>
  callback: () => RequestListener
  silent: boolean
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverApp

const require = createRequire(import.meta.url)

interface Teardown { teardown: (fn: () => unknown) => void }

/** The path of an object as S3 expects it on the wire: each key segment encoded per RFC 3986. */
export function s3ObjectPath (bucket: string, key: string): string {
  const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
  return '/' + encode(bucket) + '/' + key.split('/').map(encode).join('/')
}

export async function startS3 (t: Teardown, options: { buckets: string[] } = { buckets: [] }): Promise<TestS3> {
  const S3rver = require('@20minutes/s3rver') as S3rverConstructor
  const app = new S3rver({
    silent: true,
    directory: tempDir(t, 'labelgate-s3-'),
    configureBuckets: options.buckets.map((name) => ({ name })),
    allowMismatchedSignatures: false,
    resetOnClose: false
  })
  app.silent = true // Koa's own error printing
  await app.configureBuckets()
  const handler = app.callback()
  const requests: S3Request[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://s3.invalid')
    const raw = req.url ?? '/'
    const q = raw.indexOf('?')
    const entry: S3Request = {
      method: req.method ?? '',
      path: q === -1 ? raw : raw.slice(0, q),
      query: q === -1 ? '' : raw.slice(q + 1),
      authorized: req.headers.authorization !== undefined || url.searchParams.has('X-Amz-Signature'),
      status: 0
    }
    requests.push(entry)
    res.once('finish', () => { entry.status = res.statusCode })
    handler(req, res)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as { port: number }).port
  const host = `127.0.0.1:${port}`
  let stopped = false
  const s3: TestS3 = {
    endpoint: `http://${host}`,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    requests,
    put: async (bucket, key, body, contentType) => {
      const signed = aws4.sign({
        host,
        path: s3ObjectPath(bucket, key),
        method: 'PUT',
        service: 's3',
        region: s3.region,
        headers: { 'Content-Type': contentType },
        body
      }, { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey })
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(signed.headers ?? {})) headers[name] = String(value)
      const res = await request(s3.endpoint + (signed.path ?? '/'), { method: 'PUT', headers, body })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`s3rver PUT ${signed.path ?? ''}: ${res.statusCode} ${text}`)
    },
    clear: () => { requests.length = 0 },
    stop: async () => {
      if (stopped) return
      stopped = true
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  t.teardown(() => s3.stop())
  return s3
}
