// Reads the caller's credential from the request headers. Pure: no Fastify, no store.
//
// Label Studio clients send `Authorization: Token <key>`; JWT-style clients send `Bearer`; the
// Label Studio SDK sends `X-Api-Key`. When a proxy sits in front of Label Studio the SDK sends the
// proxy's token in Authorization and its own key in X-Api-Key: Authorization then decides, and the
// X-Api-Key is never trusted or forwarded. Browsers send Label Studio's session cookie; a Bearer
// value shaped like a JWT is one of Label Studio's access tokens. Both are introspected upstream.

export interface Credential {
  value: string
  source: 'authorization' | 'x-api-key' | 'jwt' | 'cookie'
}

export type CredentialResult =
  | { credential: Credential | null }
  | { malformed: string }

const AUTHORIZATION = /^(token|bearer) +([\x21-\x7e]{1,1024})$/i
const API_KEY = /^[\x21-\x7e]{1,1024}$/
const JWT = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}$/

export interface CookieNames { session: string, csrf: string }

export function readCredential (
  authorization: string | undefined, apiKey: string | undefined, cookies: ReadonlyMap<string, string> = new Map(),
  names: CookieNames = { session: 'sessionid', csrf: 'csrftoken' }
): CredentialResult {
  if (authorization !== undefined) {
    const match = AUTHORIZATION.exec(authorization.trim())
    if (!match) return { malformed: 'authorization-scheme' }
    const value = match[2] as string
    const jwt = (match[1] as string).toLowerCase() === 'bearer' && JWT.test(value)
    return { credential: { value, source: jwt ? 'jwt' : 'authorization' } }
  }
  if (apiKey !== undefined) {
    const value = apiKey.trim()
    if (!API_KEY.test(value)) return { malformed: 'x-api-key-format' }
    return { credential: { value, source: 'x-api-key' } }
  }
  const session = cookies.get(names.session)
  if (session !== undefined && session !== '') return { credential: { value: session, source: 'cookie' } }
  return { credential: null }
}

/**
 * The cookies of a request, strictly: a cookie named twice is an error, because Django keeps the
 * last value and a parser that kept the first would authorise one session and forward another.
 */
export function readCookies (
  header: string | string[] | undefined
): ReadonlyMap<string, string> | { malformed: string } {
  const cookies = new Map<string, string>()
  if (header === undefined) return cookies
  if (Array.isArray(header)) return { malformed: 'cookie-header-repeated' }
  for (const part of header.split(';')) {
    const text = part.trim()
    if (text === '') continue
    const at = text.indexOf('=')
    if (at <= 0) continue
    const name = text.slice(0, at).trim()
    if (cookies.has(name)) return { malformed: `cookie-repeated: ${name}` }
    cookies.set(name, text.slice(at + 1).trim())
  }
  return cookies
}

/** The seconds-since-epoch expiry of a JWT, read without checking its signature (Label Studio does that). */
export function jwtExpiry (token: string): number | null {
  try {
    const text = Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')
    const payload = JSON.parse(text) as { exp?: unknown }
    return typeof payload.exp === 'number' && Number.isFinite(payload.exp) ? payload.exp : null
  } catch {
    return null
  }
}
