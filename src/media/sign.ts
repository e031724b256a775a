import { createHmac } from 'node:crypto'
import aws4 from 'aws4'
import type { AzureBackend, BucketBackend } from '../config/types.js'
import { encodeKeyPath } from './uri.js'

// Signed requests for one object. S3 and GCS (its XML API, with HMAC interoperability keys) take
// AWS Signature Version 4, computed by the aws4 library. Azure takes Shared Key, written here from
// Microsoft's specification because its SDK needs Node 22; or a SAS token kept by the gateway.

/** A request ready to send: the URL, and every header it must carry (Host included). */
export interface SignedRequest {
  url: URL
  headers: Record<string, string>
}

export type Method = 'GET' | 'HEAD'

/** The URL of an object: virtual-hosted (bucket.host) or path style (host/bucket). */
export function bucketObjectUrl (backend: BucketBackend, bucket: string, key: string): URL {
  const path = encodeKeyPath(key)
  if (backend.endpoint === null) {
    const host = `s3.${backend.region}.amazonaws.com`
    return new URL(backend.pathStyle ? `https://${host}/${bucket}/${path}` : `https://${bucket}.${host}/${path}`)
  }
  const base = new URL(backend.endpoint)
  if (backend.pathStyle) return new URL(`${base.origin}${trimmed(base.pathname)}/${bucket}/${path}`)
  return new URL(`${base.protocol}//${bucket}.${base.host}${trimmed(base.pathname)}/${path}`)
}

function trimmed (path: string): string {
  return path.replace(/\/+$/, '')
}

/**
 * Signs a GET or HEAD of one object with SigV4. Every header sent is signed, Range included, so
 * that nothing on the way can change what is asked for. `now` is for tests.
 */
export function signBucketRequest (
  backend: BucketBackend, method: Method, bucket: string, key: string, headers: Record<string, string>, now = new Date()
): SignedRequest {
  const url = bucketObjectUrl(backend, bucket, key)
  // extraHeadersToInclude is aws4's own option (its types leave it out): aws4 skips Range otherwise.
  const request: aws4.Request & { extraHeadersToInclude: Record<string, boolean> } = {
    host: url.host,
    path: url.pathname,
    method,
    service: 's3',
    region: backend.region,
    // aws4 adds X-Amz-Content-Sha256, the digest of the empty body of a GET or HEAD.
    headers: { ...headers, 'X-Amz-Date': amzDate(now) },
    extraHeadersToInclude: { range: true }
  }
  const signed = aws4.sign(request, {
    accessKeyId: backend.accessKeyId,
    secretAccessKey: backend.secretAccessKey,
    ...(backend.sessionToken === null ? {} : { sessionToken: backend.sessionToken })
  })
  return { url, headers: lowerCased(signed.headers as Record<string, string | number>) }
}

/** SigV4's timestamp: 20150830T123600Z. */
export function amzDate (now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.[0-9]{3}/, '')
}

function lowerCased (headers: Record<string, string | number>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), String(value)]))
}

/** The blob API version the gateway speaks; Azure and Azurite both accept it. */
export const AZURE_VERSION = '2021-08-06'

/** The headers Shared Key signs by position, in order, after the verb. */
const AZURE_POSITIONAL = [
  'content-encoding', 'content-language', 'content-length', 'content-md5', 'content-type', 'date',
  'if-modified-since', 'if-match', 'if-none-match', 'if-unmodified-since', 'range'
]

export function azureBlobUrl (backend: AzureBackend, container: string, blob: string): URL {
  return new URL(`${backend.endpoint}/${container}/${encodeKeyPath(blob)}`)
}

/** Signs a GET or HEAD of one blob with Shared Key, or adds the configured SAS. */
export function signAzureRequest (
  backend: AzureBackend, method: Method, container: string, blob: string, headers: Record<string, string>,
  now = new Date()
): SignedRequest {
  const url = azureBlobUrl(backend, container, blob)
  const out: Record<string, string> = {
    ...lowerCased(headers), 'x-ms-date': now.toUTCString(), 'x-ms-version': AZURE_VERSION, host: url.host
  }
  if (backend.accountKey === null) {
    url.search = backend.sasToken ?? ''
    return { url, headers: out }
  }
  const signature = sharedKeySignature(backend.account, backend.accountKey, method, url, out)
  out.authorization = `SharedKey ${backend.account}:${signature}`
  return { url, headers: out }
}

/**
 * The Shared Key signature of a Blob service request (version 2015-02-21 and later): HMAC-SHA256,
 * under the account key, of the verb, the standard headers by position, the x-ms-* headers and the
 * resource (`/account/path`, then each query parameter on a line of its own).
 */
export function sharedKeySignature (
  account: string, key: Buffer, method: string, url: URL, headers: Record<string, string>
): string {
  const lower = lowerCased(headers)
  const positional = AZURE_POSITIONAL.map((name) => {
    const value = lower[name] ?? ''
    return name === 'content-length' && value === '0' ? '' : value
  })
  const msHeaders = Object.keys(lower).filter((name) => name.startsWith('x-ms-')).sort()
    .map((name) => `${name}:${(lower[name] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('')
  const params = new Map<string, string[]>()
  for (const [name, value] of url.searchParams) {
    const list = params.get(name.toLowerCase()) ?? []
    list.push(value)
    params.set(name.toLowerCase(), list)
  }
  const query = [...params.keys()].sort()
    .map((name) => `\n${name}:${(params.get(name) ?? []).sort().join(',')}`).join('')
  const resource = `/${account}${url.pathname}${query}`
  const stringToSign = [method, ...positional].join('\n') + '\n' + msHeaders + resource
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('base64')
}
