import type { IncomingHttpHeaders } from 'node:http'
import { hardenSetCookie, type SameSiteOptions } from '../auth/csrf.js'

// What crosses the gateway in each direction. Pure functions over header maps.

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']

// Not forwarded: the gateway answers `Expect: 100-continue` itself, and undici cannot send it.
const CLIENT_ONLY = ['expect']

// Every way a client could claim an identity or a provenance that Label Studio, or something
// behind it, might believe. The gateway sets its own values after removing these.
const CLIENT_IDENTITY = [
  'authorization', 'proxy-authorization', 'x-api-key', 'cookie',
  'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port',
  'x-forwarded-prefix', 'x-forwarded-server', 'x-real-ip', 'x-client-ip', 'true-client-ip',
  'x-request-id', 'x-remote-user', 'remote-user', 'x-forwarded-user', 'x-forwarded-email',
  'x-auth-request-user', 'x-auth-request-email', 'x-user', 'x-labelgate-user', 'x-labelgate-role',
  'x-labelgate-lookup',
  // Provenance and URL-rewrite headers that some frameworks and proxies believe.
  'x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-script-name', 'x-original-method', 'x-forwarded-ssl',
  'x-forwarded-scheme', 'x-scheme', 'x-url-scheme', 'front-end-https', 'cf-connecting-ip', 'x-cluster-client-ip',
  'x-forwarded', 'forwarded-for', 'x-host', 'x-original-host', 'x-forwarded-path', 'x-envoy-original-path'
]

// Response headers that are the gateway's to set (src/headers/): Label Studio's values, weaker or
// not, never reach the client. Access-Control-* headers go too: Label Studio answers any origin,
// and only the gateway's CORS policy may speak.
const GATEWAY_RESPONSE_HEADERS = [
  'strict-transport-security', 'content-security-policy', 'content-security-policy-report-only',
  'x-frame-options', 'x-content-type-options', 'referrer-policy', 'cross-origin-opener-policy',
  'cross-origin-resource-policy', 'origin-agent-cluster', 'x-dns-prefetch-control', 'x-download-options',
  'x-permitted-cross-domain-policies', 'x-xss-protection', 'x-powered-by'
]

export interface ForwardContext {
  requestId: string
  peer: string
  peerTrusted: boolean
  host: string | undefined
  upstreamAuthorization: string | null
}

function named (headers: IncomingHttpHeaders, name: string): string[] {
  const value = headers[name]
  const text = Array.isArray(value) ? value.join(',') : value ?? ''
  return text.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')
}

function first (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** The headers sent to Label Studio, from the client's (which this function leaves untouched). */
export function upstreamRequestHeaders (client: IncomingHttpHeaders, ctx: ForwardContext): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = { ...client }
  // Headers named in Connection go first, before the gateway adds anything: a client must not be
  // able to name, and so strip, a header that the gateway itself sets.
  for (const name of named(client, 'connection')) delete out[name]
  for (const name of [...HOP_BY_HOP, ...CLIENT_ONLY, ...CLIENT_IDENTITY]) delete out[name]
  const forwardedFor = ctx.peerTrusted ? first(client['x-forwarded-for']) : undefined
  out['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${ctx.peer}` : ctx.peer
  out['x-forwarded-proto'] = (ctx.peerTrusted ? first(client['x-forwarded-proto']) : undefined) ?? 'https'
  const forwardedHost = (ctx.peerTrusted ? first(client['x-forwarded-host']) : undefined) ?? ctx.host
  if (forwardedHost !== undefined) out['x-forwarded-host'] = forwardedHost
  out['x-request-id'] = ctx.requestId
  if (ctx.upstreamAuthorization !== null) out.authorization = ctx.upstreamAuthorization
  return out
}

/** The upstream's response headers as the client gets them; every cookie hardened. */
export function clientResponseHeaders (
  upstream: IncomingHttpHeaders, requestId: string, cookies: SameSiteOptions
): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = { ...upstream }
  // One Set-Cookie arrives as a string, several as a list.
  const setCookie: unknown = upstream['set-cookie']
  if (typeof setCookie === 'string') out['set-cookie'] = [hardenSetCookie(setCookie, cookies)]
  else if (Array.isArray(setCookie)) out['set-cookie'] = setCookie.map((c: string) => hardenSetCookie(c, cookies))
  for (const name of named(upstream, 'connection')) delete out[name]
  for (const name of HOP_BY_HOP) delete out[name]
  for (const name of GATEWAY_RESPONSE_HEADERS) delete out[name]
  for (const name of Object.keys(out)) {
    if (name.startsWith('access-control-')) delete out[name]
  }
  // The gateway's CORS answer depends on Origin, whatever Label Studio's depends on.
  out.vary = varyWithOrigin(upstream.vary)
  out['x-request-id'] = requestId
  return out
}

/** A Vary value that names Origin, keeping what it named before. */
export function varyWithOrigin (vary: string | string[] | undefined): string {
  const names = (Array.isArray(vary) ? vary.join(',') : vary ?? '').split(',').map((n) => n.trim())
    .filter((n) => n !== '')
  if (names.includes('*')) return '*'
  if (names.some((n) => n.toLowerCase() === 'origin')) return names.join(', ')
  return [...names, 'Origin'].join(', ')
}
