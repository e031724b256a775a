import { LG_ERR_UPSTREAM_TIMEOUT, LG_ERR_UPSTREAM_UNREACHABLE, withDetail } from '../errors.js'

const TIMEOUT_CODES = new Set([
  'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'
])

function ownError (err: unknown): Error | null {
  let e = err as { code?: unknown, cause?: unknown } | undefined
  for (let i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (e.code === 'LG_ERR_REQUEST_BODY_TOO_LARGE') return e as Error
  }
  return null
}

function codes (err: unknown): string[] {
  const out: string[] = []
  for (let e = err as { code?: unknown, cause?: unknown } | undefined; e && out.length < 5; e = e.cause as typeof e) {
    if (typeof e.code === 'string') out.push(e.code)
  }
  return out
}

/** Maps a failure to reach Label Studio to 504 when it was too slow, and to 502 otherwise. */
export function mapUpstreamError (err: unknown): Error {
  const chain = codes(err)
  // The gateway itself cut a streamed body off: the client's fault, not Label Studio's.
  const own = ownError(err)
  if (own !== null) return own
  const detail = chain.join('<-') || 'upstream-error'
  if (chain.some((c) => TIMEOUT_CODES.has(c))) return withDetail(new LG_ERR_UPSTREAM_TIMEOUT({ cause: err }), detail)
  return withDetail(new LG_ERR_UPSTREAM_UNREACHABLE({ cause: err }), detail)
}
