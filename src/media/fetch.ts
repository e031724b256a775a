import { request as undiciRequest, type Dispatcher } from 'undici'
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import * as errors from '../errors.js'
import { withDetail } from '../errors.js'
import type { SignedRequest } from './sign.js'

// One object fetched from a storage with a signed request and handed over as a stream: what the
// client may ask for (a range, a conditional), and what it gets back (the headers HTTP needs for
// both, never the storage's own). Storage failures become the gateway's errors.

/** A byte range the gateway passes on: one range, in one of HTTP's three forms. */
const RANGE = /^bytes=(?:([0-9]{1,15})-([0-9]{0,15})|-([0-9]{1,15}))$/
const ETAGS = /^(?:\*|(?:W\/)?"[\x21\x23-\x7e]*"(?:\s*,\s*(?:W\/)?"[\x21\x23-\x7e]*")*)$/
const TOKEN = '[A-Za-z0-9!#$&^_.+-]'
const PARAMETER = `\\s*;\\s*${TOKEN}+=(?:${TOKEN}+|"[^"\\\\\\r\\n]*")`
const MEDIA_TYPE = new RegExp(`^${TOKEN}{1,127}/${TOKEN}{1,127}(?:${PARAMETER})*$`)
/** HTTP-date's three forms (RFC 9110, 5.6.7): IMF-fixdate, RFC 850's, and asctime's, which has no zone. */
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
const TIME = '[0-9]{2}:[0-9]{2}:[0-9]{2}'
const GMT_DATE = new RegExp(`^(?:${DAY}, [0-9]{2} ${MONTH} [0-9]{4}|` +
  `(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, [0-9]{2}-${MONTH}-[0-9]{2}) ${TIME} GMT$`)
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} (?:[0-9]{2}| [0-9]) ${TIME} [0-9]{4}$`)

/**
 * Types shown inline: media, plain text and data that a browser does not run. Anything else
 * (HTML, SVG, XML, scripts, unknown types) is sent as an attachment, so it never opens as a page.
 */
const INLINE_TYPES = new Set([
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp', 'image/tiff', 'image/x-icon',
  'text/plain', 'text/csv', 'text/tab-separated-values', 'application/json', 'application/pdf',
  'application/octet-stream'
])
const INLINE_FAMILIES = /^(?:audio|video)\/[a-z0-9.+-]+$/

/**
 * The request headers passed to the storage. A Range that is not one well-formed range is left
 * out (HTTP lets a server ignore it and send the whole object); so is a Range with If-Range, whose
 * validator the gateway would have to compare itself.
 */
export function storageRequestHeaders (headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  const range = single(headers.range)
  if (range !== null && headers['if-range'] === undefined && validRange(range)) out.range = range
  // "*" is left out: Azure refuses it on a read, and a GET of an object that exists would just get 304.
  const noneMatch = single(headers['if-none-match'])?.trim() ?? null
  if (noneMatch !== null && noneMatch !== '*' && noneMatch.length <= 1024 && ETAGS.test(noneMatch)) {
    out['if-none-match'] = noneMatch
  }
  const since = httpDate(single(headers['if-modified-since']))
  if (since !== null) out['if-modified-since'] = new Date(since).toUTCString()
  return out
}

/**
 * The time an HTTP-date names, or null for any other text: HTTP ignores a conditional whose date
 * is not one, and JavaScript's own parser would read many such values ("1", "2020") as dates.
 */
function httpDate (text: string | null): number | null {
  if (text === null) return null
  const time = GMT_DATE.test(text) ? Date.parse(text) : ASCTIME_DATE.test(text) ? Date.parse(`${text} GMT`) : NaN
  return Number.isNaN(time) ? null : time
}

/** N of a suffix range `bytes=-N`; null for any other range. */
export function suffixLength (range: string | undefined): number | null {
  const match = range === undefined ? null : RANGE.exec(range)
  return match?.[3] === undefined ? null : Number(match[3])
}

/**
 * The explicit range of the last `suffix` bytes of an object `length` bytes long, or null when
 * none of it exists. Not every storage reads suffix ranges (Azure does not), so the gateway asks
 * for the size first and sends every storage a range with both ends.
 */
export function explicitSuffix (suffix: number, length: number): string | null {
  if (suffix === 0 || length === 0) return null
  return `bytes=${Math.max(0, length - suffix)}-${length - 1}`
}

function validRange (range: string): boolean {
  const match = RANGE.exec(range)
  if (match === null) return false
  const [, first, last] = match
  return first === undefined || last === undefined || last === '' || Number(first) <= Number(last)
}

function single (value: string | string[] | undefined): string | null {
  return typeof value === 'string' ? value : null
}

export interface StorageAnswer {
  statusCode: 200 | 206 | 304
  headers: Record<string, string>
  /** The object's bytes, or null for a 304 and a HEAD. */
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
  if (status === 200 || status === 206 || status === 304) {
    const headers = clientHeaders(response.headers, status)
    // A 304 names the representation it confirms; some stores leave it out. With one tag asked
    // about, that tag is the one that matched.
    const asked = signed.headers['if-none-match']
    if (status === 304 && headers.etag === undefined && asked !== undefined && !asked.includes(',')) {
      headers.etag = asked
    }
    if (status === 304 || method === 'HEAD') {
      response.body.resume()
      return { statusCode: status, headers, body: null }
    }
    return { statusCode: status, headers, body: response.body }
  }
  // The storage's body may name the bucket, the key or the account: it is never passed on.
  response.body.resume()
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

function first (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** What the client is told about the object: HTTP's headers for ranges and caching, nothing else. */
function clientHeaders (from: IncomingHttpHeaders, status: number): Record<string, string> {
  const out: Record<string, string> = {
    'cache-control': 'private, no-cache',
    'accept-ranges': 'bytes'
  }
  const etag = first(from.etag)
  if (etag !== undefined && ETAGS.test(etag) && etag !== '*') out.etag = etag
  const modified = first(from['last-modified'])
  if (modified !== undefined && !Number.isNaN(Date.parse(modified))) out['last-modified'] = modified
  if (status === 304) return out
  const length = first(from['content-length'])
  if (length !== undefined && /^[0-9]{1,15}$/.test(length)) out['content-length'] = length
  const range = first(from['content-range'])
  if (status === 206 && range !== undefined && /^bytes [0-9]{1,15}-[0-9]{1,15}\/(?:[0-9]{1,15}|\*)$/.test(range)) {
    out['content-range'] = range
  }
  const type = first(from['content-type'])?.trim()
  const safeType = type !== undefined && MEDIA_TYPE.test(type) ? type : 'application/octet-stream'
  out['content-type'] = safeType
  if (!inlineType(safeType)) out['content-disposition'] = 'attachment'
  return out
}

/** True for a media type a browser shows as media or text, never runs as a page. */
export function inlineType (type: string): boolean {
  const essence = type.split(';')[0]?.trim().toLowerCase() ?? ''
  return INLINE_TYPES.has(essence) || INLINE_FAMILIES.test(essence)
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
  if (chain.some((c) => TIMEOUTS.has(c) || c === 'TimeoutError')) {
    return withDetail(new errors.LG_ERR_STORAGE_TIMEOUT({ cause: err }), detail)
  }
  return withDetail(new errors.LG_ERR_STORAGE_UNREACHABLE({ cause: err }), detail)
}
