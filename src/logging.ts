import type { FastifyReply, FastifyRequest } from 'fastify'
import type { LoggerOptions } from 'pino'

// Credentials never reach a log line. The access line is built from the gate state only (route
// templates, never raw URLs or headers); redaction below is the second line of defence for
// anything else that might log a request or a response.
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]', 'res.headers["set-cookie"]', 'headers.authorization',
  'headers.cookie', 'headers["x-api-key"]', 'token', 'password', 'secret'
]

export function loggerOptions (level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      // Only what identifies a request: no URL (queries carry secrets such as invite tokens) and no headers.
      req: (req: { method?: string, id?: string }) => ({ method: req.method, id: req.id })
    }
  }
}

/**
 * One line per request: who asked, what was decided and by which rule, and what happened upstream.
 * `reply` is null for a request whose client left before it was whole. A request is logged once.
 */
export function logAccess (request: FastifyRequest, reply: FastifyReply | null): void {
  const gate = (request.gate as FastifyRequest['gate'] | undefined) ?? null
  if (gate?.logged) return
  if (gate) gate.logged = true
  const decision = gate?.decision ?? null
  const principal = gate?.principal ?? null
  // Requests refused by the router have no route options at all.
  const routeOptions = request.routeOptions as FastifyRequest['routeOptions'] | undefined
  const internal = routeOptions?.config?.internal === true
  const granted = gate !== null && gate.code === null && (internal || gate.preflight || decision?.granted === true)
  const line = {
    method: request.method,
    route: internal ? routeOptions?.url ?? null : decision?.route ?? null,
    statusCode: reply?.statusCode ?? null,
    responseTime: reply ? Math.round(reply.elapsedTime * 10) / 10 : null,
    user: principal?.user ?? null,
    tokenId: principal?.tokenId ?? null,
    role: principal?.role ?? null,
    decision: {
      granted,
      reason: gate?.code ?? (granted ? 'ok' : 'LG_ERR_REQUEST_REFUSED'),
      ...(gate?.detail ? { detail: gate.detail } : {})
    },
    rule: decision?.rule
      ? { id: decision.rule.id, role: decision.rule.role, file: decision.rule.file, line: decision.rule.line }
      : null,
    // Which projects were checked, and how each was found (path, cache, or a lookup in Label Studio).
    ...(gate?.project ? { project: gate.project } : {}),
    // A file served by the gateway itself: the backend's name, never a bucket URL or a signature.
    ...(gate?.media ? { media: gate.media } : {}),
    upstream: gate?.upstream ? { statusCode: gate.upstream.statusCode, ms: gate.upstream.ms } : null
  }
  const ownFault = reply !== null && reply.statusCode >= 500 && gate?.upstream?.statusCode == null &&
    gate?.media?.storage?.statusCode == null
  if (ownFault) request.log.error(line, 'request')
  else request.log.info(line, 'request')
}
