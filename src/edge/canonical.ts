// Canonical-form checks on the request line and headers, run before any decision. Pure.
//
// The policy decides on the same bytes that are forwarded, so anything that two HTTP stacks could
// read in two ways is refused rather than normalised: encoded separators, dot and empty segments,
// backslashes, fragments, non-origin-form targets, method overrides, duplicated framing or
// identity headers, and header names with underscores (a WSGI server reads X_Api_Key as X-Api-Key).

export const ACCEPTED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

// RFC 3986 pchar, less ';' (a path parameter delimiter on some stacks), plus '/' and '%'.
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,=:@/%]*$/
const QUERY_CHARS = /^[\x21-\x7e]*$/
const UNRESERVED = /[A-Za-z0-9\-._~]/
// Decoded, these would change how the path splits or ends on some stack.
const DANGEROUS_ENCODED: Record<string, string> = {
  '/': 'an encoded /',
  '\\': 'an encoded \\',
  ';': 'an encoded ;',
  '?': 'an encoded ?',
  '#': 'an encoded #',
  '%': 'an encoded %',
  '\0': 'an encoded NUL'
}

export interface Target { path: string, query: string }

export type TargetResult = { target: Target } | { problem: string }

export function checkTarget (raw: string): TargetResult {
  if (raw === '*') return { problem: 'asterisk-form target' }
  if (!raw.startsWith('/')) return { problem: 'not an origin-form target (absolute or authority form)' }
  if (raw.includes('#')) return { problem: 'a fragment' }
  const q = raw.indexOf('?')
  const path = q === -1 ? raw : raw.slice(0, q)
  const query = q === -1 ? '' : raw.slice(q + 1)
  const problem = checkPath(path) ?? checkQuery(query)
  return problem === null ? { target: { path, query } } : { problem }
}

function checkPath (path: string): string | null {
  if (path.includes('\\')) return 'a backslash in the path'
  if (path.includes(';')) return 'a ; in the path'
  if (!PATH_CHARS.test(path)) return 'a character that must be percent-encoded'
  const encoded = checkEncodings(path)
  if (encoded !== null) return encoded
  const segments = path.slice(1).split('/')
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]
    if (segment === '.' || segment === '..') return 'a dot segment'
    // An empty last segment is the trailing slash; anywhere else it is `//`.
    if (segment === '' && i !== segments.length - 1) return 'an empty segment (//)'
  }
  return null
}

function checkEncodings (path: string): string | null {
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hex = path.slice(i + 1, i + 3)
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return 'a malformed percent-encoding'
    const char = String.fromCharCode(parseInt(hex, 16))
    const named = DANGEROUS_ENCODED[char]
    if (named !== undefined) return named
    // An encoded unreserved character (%2E is '.', %61 is 'a') has a shorter canonical spelling
    // that a rule would be written with; refusing it keeps one spelling per path.
    if (UNRESERVED.test(char)) return `an encoded unreserved character (%${hex})`
    if (char < ' ' || char === '\x7f') return 'an encoded control character'
  }
  return null
}

function checkQuery (query: string): string | null {
  if (!QUERY_CHARS.test(query)) return 'a character in the query that must be percent-encoded'
  // Older Django and Python split query strings on ';' as well as '&': one string, two readings.
  if (query.includes(';')) return 'a ; in the query'
  for (const pair of query.split('&')) {
    const name = pair.split('=', 1)[0] ?? ''
    if (/^_method$/i.test(safeDecode(name))) return 'a _method parameter'
  }
  return null
}

function safeDecode (text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '))
  } catch {
    return text
  }
}

const SINGLE_HEADERS = new Set([
  'authorization', 'host', 'content-type', 'content-length', 'transfer-encoding', 'x-api-key'
])
const OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])

// Headers that the gateway reads or sets: a Connection header naming one of them would make the
// gateway and Label Studio see different requests.
const PROTECTED = new Set([
  ...SINGLE_HEADERS, 'cookie', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  'x-request-id', 'x-real-ip', 'expect'
])

/** Most header lines a request may have; Node silently drops any beyond its own limit. */
export const MAX_HEADERS = 100

export type HeaderProblem = { kind: 'override' | 'ambiguous' | 'too-many', message: string } | null

/** Checks Node's rawHeaders list ([name, value, name, value, ...]) as the client sent it. */
export function checkHeaders (rawHeaders: readonly string[]): HeaderProblem {
  if (rawHeaders.length / 2 > MAX_HEADERS) return { kind: 'too-many', message: `more than ${MAX_HEADERS} headers` }
  const seen = new Set<string>()
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase()
    const value = rawHeaders[i + 1] ?? ''
    if (name === 'connection') {
      const named = value.split(',').map((s) => s.trim().toLowerCase()).find((s) => PROTECTED.has(s))
      if (named) return { kind: 'ambiguous', message: `Connection names ${named}` }
    }
    if (name === 'transfer-encoding' && value.trim().toLowerCase() !== 'chunked') {
      return { kind: 'ambiguous', message: 'a transfer-coding other than chunked' }
    }
    if (name.includes('_')) return { kind: 'ambiguous', message: 'a header name with an underscore' }
    if (OVERRIDE_HEADERS.has(name)) return { kind: 'override', message: `the ${name} header` }
    if (SINGLE_HEADERS.has(name)) {
      if (seen.has(name)) return { kind: 'ambiguous', message: `more than one ${name} header` }
      seen.add(name)
    }
  }
  if (seen.has('content-length') && seen.has('transfer-encoding')) {
    return { kind: 'ambiguous', message: 'both content-length and transfer-encoding' }
  }
  if (!seen.has('host')) return { kind: 'ambiguous', message: 'no Host header' }
  return null
}
