import type { IncomingHttpHeaders } from 'node:http'

// HTTP's rules for serving a file, shared by bucket objects and local files: which range and
// conditionals a client asked for (RFC 9110, sections 13 and 14), which of them a storage is sent,
// and which headers the client gets back. Pure: nothing here reads the network or the disk.

/** One byte range, in one of HTTP's three forms. */
const RANGE = /^bytes=(?:([0-9]{1,15})-([0-9]{0,15})|-([0-9]{1,15}))$/
const ENTITY_TAG = '(?:W/)?"[\\x21\\x23-\\x7e]*"'
const ETAG = new RegExp(`^${ENTITY_TAG}$`)
const ETAG_LIST = new RegExp(`^(?:\\*|${ENTITY_TAG}(?:\\s*,\\s*${ENTITY_TAG})*)$`)
const TOKEN = '[A-Za-z0-9!#$&^_.+-]'
const PARAMETER = `\\s*;\\s*${TOKEN}+=(?:${TOKEN}+|"[^"\\\\\\r\\n]*")`
const MEDIA_TYPE = new RegExp(`^${TOKEN}{1,127}/${TOKEN}{1,127}(?:${PARAMETER})*$`)
const CODINGS = /^(?:gzip|br|deflate|zstd|compress)(?:\s*,\s*(?:gzip|br|deflate|zstd|compress))*$/
/** HTTP-date's three forms (RFC 9110, 5.6.7): IMF-fixdate, RFC 850's, and asctime's, which has no zone. */
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
const TIME = '[0-9]{2}:[0-9]{2}:[0-9]{2}'
const GMT_DATE = new RegExp(`^(?:${DAY}, [0-9]{2} ${MONTH} [0-9]{4}|` +
  `(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, [0-9]{2}-${MONTH}-[0-9]{2}) ${TIME} GMT$`)
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} (?:[0-9]{2}| [0-9]) ${TIME} [0-9]{4}$`)

/**
 * Types shown inline: media, plain text and data that a browser does not run. Anything else
 * (HTML, SVG, XML, scripts, unknown types and application/octet-stream, which a file of unknown
 * type gets) is sent as an attachment, so it never opens as a page.
 */
const INLINE_TYPES = new Set([
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp', 'image/tiff', 'image/x-icon',
  'text/plain', 'text/csv', 'text/tab-separated-values', 'application/json', 'application/pdf'
])
const INLINE_FAMILIES = /^(?:audio|video)\/[a-z0-9.+-]+$/

/** Every media response says this: private to the caller, and checked again before each reuse. */
export const CACHE_CONTROL = 'private, no-cache'

export function single (value: string | string[] | undefined): string | null {
  return typeof value === 'string' ? value : null
}

/**
 * The request headers passed to a storage: only a Range that is one well-formed range, and not
 * under If-Range (HTTP lets a server ignore it and send the whole object). Conditionals are not
 * passed on: stores honour them in different ways (one answers 304 on a date beside a tag that
 * does not match), so the gateway evaluates them itself on the storage's answer (preconditions()).
 */
export function storageRequestHeaders (headers: IncomingHttpHeaders): Record<string, string> {
  const range = single(headers.range)
  return range !== null && headers['if-range'] === undefined && validRange(range) ? { range } : {}
}

/**
 * The time an HTTP-date names, or null for any other text: HTTP ignores a conditional whose date
 * is not one, and JavaScript's own parser would read many such values ("1", "2020") as dates.
 */
export function httpDate (text: string | null | undefined): number | null {
  if (text === null || text === undefined) return null
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

/**
 * The bytes of a file of `size` bytes that a request asks for: a range, 'unsatisfiable', or null
 * for the whole file (no Range, one that is not a single valid range, or one under If-Range).
 */
export function byteRange (
  headers: IncomingHttpHeaders, size: number
): { start: number, end: number } | 'unsatisfiable' | null {
  const range = single(headers.range)
  if (range === null || headers['if-range'] !== undefined || !validRange(range)) return null
  const [, first, last, suffix] = RANGE.exec(range) as unknown as [string, string?, string?, string?]
  if (suffix !== undefined) {
    const n = Number(suffix)
    return n === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(first)
  if (start >= size) return 'unsatisfiable'
  return { start, end: last === undefined || last === '' ? size - 1 : Math.min(Number(last), size - 1) }
}

/** What the gateway knows of the version it is about to send. */
export interface Validators { etag: string | null, lastModified: number | null }

/**
 * The answer HTTP's preconditions give for a GET or HEAD of an existing object (RFC 9110, 13.2.2):
 * 412, 304, or null to send it. Applied to every object, so a storage that ignores some
 * conditionals still answers as HTTP says.
 */
export function preconditions (headers: IncomingHttpHeaders, version: Validators): 304 | 412 | null {
  const match = single(headers['if-match'])?.trim()
  if (match !== undefined) {
    if (!matches(match, version.etag, true)) return 412
  } else {
    const since = httpDate(single(headers['if-unmodified-since']))
    if (since !== null && version.lastModified !== null && seconds(version.lastModified) > seconds(since)) return 412
  }
  const noneMatch = single(headers['if-none-match'])?.trim()
  if (noneMatch !== undefined) return matches(noneMatch, version.etag, false) ? 304 : null
  const since = httpDate(single(headers['if-modified-since']))
  if (since !== null && version.lastModified !== null && seconds(version.lastModified) <= seconds(since)) return 304
  return null
}

function seconds (ms: number): number {
  return Math.floor(ms / 1000)
}

/** Whether a list of entity tags names this version: strong comparison for If-Match, weak for If-None-Match. */
function matches (list: string, etag: string | null, strong: boolean): boolean {
  if (list === '*') return true
  if (etag === null || list.length > 1024 || !ETAG_LIST.test(list)) return false
  if (strong && etag.startsWith('W/')) return false
  const opaque = (tag: string): string => tag.replace(/^W\//, '')
  return list.split(',').map((tag) => tag.trim()).some((tag) =>
    strong ? !tag.startsWith('W/') && tag === etag : opaque(tag) === opaque(etag))
}

export function first (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** What the client is told of a storage's answer: HTTP's headers for ranges, caching and coding, nothing else. */
export function clientHeaders (from: IncomingHttpHeaders, status: number): Record<string, string> {
  const out: Record<string, string> = { 'cache-control': CACHE_CONTROL, 'accept-ranges': 'bytes' }
  const etag = first(from.etag)
  if (etag !== undefined && ETAG.test(etag)) out.etag = etag
  const modified = first(from['last-modified'])
  if (modified !== undefined && !Number.isNaN(Date.parse(modified))) out['last-modified'] = modified
  if (status === 304) return out
  const length = first(from['content-length'])
  if (length !== undefined && /^[0-9]{1,15}$/.test(length)) out['content-length'] = length
  const range = first(from['content-range'])
  if (status === 206 && range !== undefined && validContentRange(range)) out['content-range'] = range
  // An object stored compressed is sent as stored; without its coding the client could not read it.
  const coding = first(from['content-encoding'])?.trim().toLowerCase()
  if (coding !== undefined && CODINGS.test(coding)) out['content-encoding'] = coding
  Object.assign(out, typeHeaders(first(from['content-type'])))
  return out
}

/** A Content-Range of a 206: one range, first byte not after the last, inside the stated length. */
export function validContentRange (value: string): boolean {
  const match = /^bytes ([0-9]{1,15})-([0-9]{1,15})\/([0-9]{1,15}|\*)$/.exec(value)
  if (match === null) return false
  const [, first, last, size] = match as unknown as [string, string, string, string]
  return Number(first) <= Number(last) && (size === '*' || Number(last) < Number(size))
}

/** Content-Type (application/octet-stream when missing or malformed), and attachment for page types. */
export function typeHeaders (type: string | null | undefined): Record<string, string> {
  const trimmed = type?.trim()
  const safe = trimmed !== undefined && MEDIA_TYPE.test(trimmed) ? trimmed : 'application/octet-stream'
  return inlineType(safe) ? { 'content-type': safe } : { 'content-type': safe, 'content-disposition': 'attachment' }
}

/** True for a media type a browser shows as media or text, never runs as a page. */
export function inlineType (type: string): boolean {
  const essence = type.split(';')[0]?.trim().toLowerCase() ?? ''
  return INLINE_TYPES.has(essence) || INLINE_FAMILIES.test(essence)
}
