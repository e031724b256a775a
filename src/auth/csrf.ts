// Label Studio does not check CSRF on its API, and a browser attaches its session cookie to
// requests that other sites start. A write that carries cookies is accepted only from the
// gateway's own origin or a configured one, as the browser states it in Origin (or, failing that,
// in Referer). Pure: no Fastify.

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export function isUnsafe (method: string): boolean {
  return UNSAFE.has(method)
}

/** The origin a browser says a request comes from: Origin, else the origin of Referer; null when neither. */
export function statedOrigin (origin: string | undefined, referer: string | undefined): string | null {
  if (origin !== undefined) return origin.trim()
  if (referer === undefined) return null
  try {
    return new URL(referer).origin
  } catch {
    return null
  }
}

/**
 * The origins whose cookie-carrying writes are accepted: the configured public origin (or, without
 * one, https:// and the request's own Host, which the edge has already checked) and the trusted list.
 */
export function acceptedOrigins (
  publicOrigin: string | null, host: string | undefined, trusted: readonly string[]
): string[] {
  const own = publicOrigin ?? (host === undefined ? null : `https://${host.toLowerCase()}`)
  return own === null ? [...trusted] : [own, ...trusted]
}

export interface SameSiteOptions { sessionCookie: string, csrfCookie: string, sameSite: 'lax' | 'strict' | 'none' }

const SAME_SITE_RANK: Record<string, number> = { none: 0, lax: 1, strict: 2 }

/**
 * One Set-Cookie from Label Studio as the browser gets it: always Secure, HttpOnly on the session
 * cookie, and SameSite at least the configured value. The name and value are left byte for byte.
 */
export function hardenSetCookie (value: string, options: SameSiteOptions): string {
  const [pair = '', ...rest] = value.split(';')
  const name = pair.slice(0, Math.max(0, pair.indexOf('='))).trim()
  const attributes = rest.map((a) => a.trim()).filter((a) => a !== '')
  const named = (a: string): string => (a.split('=')[0] ?? '').trim().toLowerCase()
  const sameSite = attributes.find((a) => named(a) === 'samesite')?.split('=')[1]?.trim().toLowerCase() ?? 'none'
  const keep = attributes.filter((a) => !['secure', 'samesite'].includes(named(a)) &&
    !(name === options.sessionCookie && named(a) === 'httponly'))
  const strongest = (SAME_SITE_RANK[sameSite] ?? 0) >= SAME_SITE_RANK[options.sameSite]! ? sameSite : options.sameSite
  const label = strongest.charAt(0).toUpperCase() + strongest.slice(1)
  const httpOnly = name === options.sessionCookie ? ['HttpOnly'] : []
  return [pair.trim(), ...keep, ...httpOnly, 'Secure', `SameSite=${label}`].join('; ')
}
