import { Type } from '@sinclair/typebox'
import type { ConfigProblems } from './load.js'
import type { GatewayConfig } from './types.js'
import { exactOrigin } from './origin.js'

// Browser sessions: Label Studio's own session cookie and access JWTs, introspected upstream.

const COOKIE_NAME = '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$'

export const SessionsSchema = Type.Object({
  cookie_name: Type.String({
    pattern: COOKIE_NAME, default: 'sessionid', description: 'Label Studio\'s session cookie'
  }),
  csrf_cookie_name: Type.String({ pattern: COOKIE_NAME, default: 'csrftoken', description: 'Django\'s CSRF cookie' }),
  cache_ttl: Type.String({
    default: '60s', description: 'how long the user behind a session cookie or access JWT is remembered'
  }),
  trusted_origins: Type.Array(Type.String(), {
    default: [], description: 'origins besides server.public_origin that may send cookie-authenticated writes'
  }),
  same_site: Type.Union([Type.Literal('lax'), Type.Literal('strict'), Type.Literal('none')], {
    default: 'lax', description: 'SameSite for upstream cookies that set a weaker one or none'
  }),
  upstream_origin: Type.Union([Type.String(), Type.Null()], {
    default: null,
    description: 'the Origin Label Studio expects on its CSRF-checked forms; null: the origin of upstream.url'
  })
}, { additionalProperties: false })

export function resolveSessions (
  raw: { sessions: typeof SessionsSchema.static }, upstreamUrl: string, c: ConfigProblems
): GatewayConfig['sessions'] {
  const s = raw.sessions
  const trusted = s.trusted_origins.flatMap((text, i) => {
    const found = exactOrigin(text)
    if ('error' in found) c.add(['sessions', 'trusted_origins', i], found.error)
    else if (!found.origin.startsWith('https:')) c.add(['sessions', 'trusted_origins', i], 'must use https://')
    else return [found.origin]
    return []
  })
  const given = s.upstream_origin === null ? null : exactOrigin(s.upstream_origin)
  if (given !== null && 'error' in given) c.add(['sessions', 'upstream_origin'], given.error)
  const upstreamOrigin = given === null ? originOf(upstreamUrl) : 'origin' in given ? given.origin : null
  if (s.cookie_name === s.csrf_cookie_name) c.add(['sessions', 'csrf_cookie_name'], 'must differ from cookie_name')
  return {
    cookieName: s.cookie_name,
    csrfCookieName: s.csrf_cookie_name,
    cacheTtlMs: c.duration(['sessions', 'cache_ttl'], s.cache_ttl, 60_000),
    trustedOrigins: trusted,
    sameSite: s.same_site,
    upstreamOrigin: upstreamOrigin ?? ''
  }
}

function originOf (url: string): string | null {
  try {
    return new URL(url).origin
  } catch {
    return null
  }
}
