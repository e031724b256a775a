import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { GatewayConfig } from '../config/types.js'
import type { GateState } from '../types/fastify.js'
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js'
import { mapUpstreamError } from './upstream-errors.js'
import { capStreamedBody, checkRequestBody, filtersResponse, sendFiltered } from './bodies.js'
import { parseHostHeader } from '../edge/host.js'
import type { ProjectResolver } from '../scope/resolve.js'
import { enforceProjects } from '../scope/enforce.js'
import { checkPasswords, checkSignupMode } from './passwords.js'

export interface ProxyOptions {
  /** The connection pool to Label Studio; its owner closes it. */
  agent: Agent
  sessions: GatewayConfig['sessions']
  signup: GatewayConfig['signup']
  maxBodyBytes: number
  upstream: GatewayConfig['upstream']
  filters: GatewayConfig['filters']
  /** Places the ids of a request in their projects. */
  resolver: ProjectResolver
  isTrusted: (address: string | undefined) => boolean
}

// OPTIONS is left out: CORS preflight is the gateway's to answer (src/headers/cors.ts), and a
// route for it here would clash with the one there.
export const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT']

export function createUpstreamAgent (upstream: GatewayConfig['upstream']): Agent {
  // Every limit is explicit: undici's defaults wait up to five minutes.
  return new Agent({
    connect: {
      timeout: upstream.connectTimeoutMs,
      ...(upstream.caFile === null ? {} : { ca: readFileSync(upstream.caFile) })
    },
    headersTimeout: upstream.headersTimeoutMs,
    bodyTimeout: upstream.bodyTimeoutMs,
    keepAliveTimeout: upstream.keepAliveTimeoutMs,
    connections: upstream.connections
  })
}

/** The parts of a request that forwarding reads, whichever server type Fastify runs on. */
interface Forwarded {
  id: string
  headers: IncomingHttpHeaders
  raw: { socket: { remoteAddress?: string | undefined } }
  gate: GateState
}

function forwardHeaders (options: ProxyOptions, request: Forwarded, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const peer = request.raw.socket.remoteAddress ?? ''
  const out = upstreamRequestHeaders(request.headers, {
    requestId: request.id,
    peer,
    peerTrusted: options.isTrusted(peer),
    host: parseHostHeader(request.headers.host) === null ? undefined : request.headers.host,
    upstreamAuthorization: request.gate.principal?.upstreamAuthorization ?? null
  })
  // A response that must be filtered is asked for whole and uncompressed, so that it can be read:
  // a 304 or 206 would confirm or reveal bytes of the unfiltered body.
  if (wantsWholeResponse(request.gate)) {
    for (const name of ['accept-encoding', 'if-none-match', 'if-modified-since', 'range', 'if-range']) delete out[name]
  }
  // reply-from has set the Host for the upstream connection; keep its value.
  out.host = headers.host
  const gate = request.gate
  if (gate.upstreamCookie !== null) out.cookie = gate.upstreamCookie
  // Django compares a form's Origin with the origin it believes it serves; the gateway has checked
  // the browser's, so Label Studio is sent its own (section "Label Studio's login" in the README).
  if (gate.originChecked) out.origin = options.sessions.upstreamOrigin
  const length = request.gate.forwardedLength
  if (length !== null) {
    // The body is the gateway's own serialisation: its length, no transfer or content coding.
    out['content-length'] = String(length)
    delete out['content-encoding']
  } else if (headers['content-length'] !== undefined) out['content-length'] = headers['content-length']
  return out
}

/** A response the gateway filters (fields, or a list's items) is read whole; others stream. */
function wantsWholeResponse (gate: GateState): boolean {
  return gate.decision?.rule?.response != null || gate.projectList !== null
}

async function proxy (app: FastifyInstance, options: ProxyOptions): Promise<void> {
  // Every body reaches the proxy as a stream: Fastify's own text parser would otherwise turn
  // text/plain bodies into strings that skip the stream handling.
  app.removeContentTypeParser('text/plain')
  const agent = options.agent
  const cookieOptions = {
    sessionCookie: options.sessions.cookieName,
    csrfCookie: options.sessions.csrfCookieName,
    sameSite: options.sessions.sameSite
  }
  const resolver = options.resolver

  const proxyOptions: FastifyHttpProxyOptions = {
    upstream: options.upstream.url,
    httpMethods: PROXIED_METHODS,
    undici: agent,
    disableRequestLogging: true,
    internalRewriteLocationHeader: false,
    preHandler: async (request: FastifyRequest) => {
      const rule = request.gate.decision?.rule
      if (rule) {
        checkSignupMode(request.gate.target?.path ?? '', request.gate.target?.query ?? '', options.signup)
        const body = await checkRequestBody(request, rule, options.filters, options.maxBodyBytes)
        await checkPasswords(request, body, options)
        await enforceProjects(request, rule, body, resolver)
      }
      capStreamedBody(request, options.maxBodyBytes)
      request.gate.upstream = { start: performance.now(), statusCode: null, ms: null }
    },
    replyOptions: {
      // The query goes upstream exactly as the client sent it and as the gateway checked it.
      // A list narrowed to the caller's projects is the one exception (src/scope/).
      queryString: (_search, _url, request) => request.gate.upstreamQuery ?? request.gate.target?.query ?? '',
      rewriteRequestHeaders: (request, headers) => forwardHeaders(options, request, headers as IncomingHttpHeaders),
      rewriteHeaders: (headers, request) =>
        clientResponseHeaders(headers as IncomingHttpHeaders, request?.id ?? '', cookieOptions),
      // A gateway must not replay requests on its own: Label Studio's answer, 503 included, is final.
      retryDelay: () => null,
      onResponse: (request, reply, res) => {
        const upstream = request.gate.upstream
        if (upstream) {
          upstream.statusCode = res.statusCode
          upstream.ms = Math.round((performance.now() - upstream.start) * 10) / 10
        }
        const rule = request.gate.decision?.rule
        if (rule && filtersResponse(wantsWholeResponse(request.gate), res.statusCode)) {
          const list = request.gate.projectList
          sendFiltered(reply, rule, res.stream, options.filters, request.method, res.statusCode, list)
            .catch((err: unknown) => reply.send(mapUpstreamError(err)))
          return
        }
        reply.send(res.stream)
      },
      onError: (reply, { error }) => {
        const upstream = reply.request.gate.upstream
        if (upstream) upstream.ms = Math.round((performance.now() - upstream.start) * 10) / 10
        reply.send(mapUpstreamError(error))
      }
    }
  }
  await app.register(httpProxy, proxyOptions)
}

export const proxyPlugin = fp(proxy, {
  name: 'labelgate-proxy', fastify: '5.x', dependencies: ['labelgate-access'], encapsulate: true
})
