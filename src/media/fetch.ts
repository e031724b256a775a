import { request as undiciRequest, type Dispatcher } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import * as errors from '../errors.js'
import { withDetail } from '../errors.js'
import type { SignedRequest } from './sign.js'
import { clientHeaders, first } from './http.js'
import { discard } from '../proxy/bodies.js'

// One object fetched from a storage with a signed request and handed over as a stream, with the
// headers HTTP needs (src/media/http.ts), never the storage's own. Storage failures become the
// gateway's errors, without the storage's body or address.

export interface StorageAnswer {
  statusCode: 200 | 206
  headers: Record<string, string>
  /** The object's bytes, or null for a HEAD. */
  body: Readable | null
}

export interface FetchOptions {
  dispatcher: Dispatcher
  timeoutMs: number
  /** Told the storage's status as soon as it is known, for the access line. */
  onStatus: (status: number) => void
}

/** Sends a signed request; answers what the client should see, or throws a coded error. */
export async function fetchObject (
  signed: SignedRequest, method: 'GET' | 'HEAD', options: FetchOptions
): Promise<StorageAnswer> {
  let response: Dispatcher.ResponseData
  try {
    response = await undiciRequest(signed.url, {
      dispatcher: options.dispatcher,
      method,
      headers: signed.headers,
      // The whole transfer, body included: a storage that trickles is cut off.
      signal: AbortSignal.timeout(options.timeoutMs)
    })
  } catch (err) {
    throw storageError(err)
  }
  const status = response.statusCode
  options.onStatus(status)
  // The gateway sends no conditional of the client's, so a 304 is not an answer it can use; a
  // 206 must say which bytes it carries.
  const headers = status === 200 || status === 206 ? clientHeaders(response.headers, status) : null
  if (headers !== null && (status === 200 || headers['content-range'] !== undefined)) {
    if (method === 'HEAD') {
      discard(response.body)
      return { statusCode: status as 200 | 206, headers, body: null }
    }
    return { statusCode: status as 200 | 206, headers, body: response.body }
  }
  // The storage's body may name the bucket, the key or the account: it is never passed on.
  discard(response.body)
  throw refusal(status, response.headers)
}

function refusal (status: number, headers: IncomingHttpHeaders): Error {
  const detail = `storage-status-${status}`
  if (status === 404) return withDetail(new errors.LG_ERR_MEDIA_NOT_FOUND(), detail)
  if (status === 412) return withDetail(new errors.LG_ERR_MEDIA_PRECONDITION_FAILED(), detail)
  if (status === 416) {
    const range = first(headers['content-range'])
    const error = withDetail(new errors.LG_ERR_MEDIA_RANGE_NOT_SATISFIABLE(), detail)
    return /^bytes \*\/[0-9]{1,15}$/.test(range ?? '') ? Object.assign(error, { contentRange: range }) : error
  }
  if (status === 401 || status === 403) return withDetail(new errors.LG_ERR_STORAGE_DENIED(), detail)
  return withDetail(new errors.LG_ERR_STORAGE_FAILED(), detail)
}

const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

/** A failure to reach the storage: 504 when it was too slow, 502 otherwise. */
export function storageError (err: unknown): Error {
  const chain: string[] = []
  type Link = { code?: unknown, name?: unknown, cause?: unknown } | undefined
  for (let e = err as Link; e && chain.length < 5; e = e.cause as Link) {
    if (typeof e.code === 'string') chain.push(e.code)
    else if (e.name === 'TimeoutError') chain.push('TimeoutError')
  }
  const detail = chain.join('<-') || 'storage-error'
  // No cause is kept: its message names the storage's address, which no log line may show.
  if (chain.some((c) => TIMEOUTS.has(c) || c === 'TimeoutError')) {
    return withDetail(new errors.LG_ERR_STORAGE_TIMEOUT(), detail)
  }
  return withDetail(new errors.LG_ERR_STORAGE_UNREACHABLE(), detail)
}
