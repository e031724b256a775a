import { randomUUID } from 'node:crypto'
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import helmet from '@fastify/helmet'
import type { Logger } from 'pino'
import type { GatewayConfig } from './config/types.js'
import type { PolicySet } from './policy/compile.js'
import type { IdentityStore } from './identity/store.js'
import { Authenticator } from './auth/authenticate.js'
import { accessPlugin } from './auth/plugin.js'
import { edgePlugin, newGateState } from './edge/plugin.js'
import { createTrust } from './edge/trust.js'
import { createUpstreamAgent, proxyPlugin } from './proxy/plugin.js'
import { SessionIntrospector } from './auth/sessions.js'
import { corsPlugin } from './headers/cors.js'
import { createSecurityHeaders, helmetOptions, mediaHeadersPlugin } from './headers/security.js'
import { createClientErrorHandler, handleError, refuseOnSocket } from './error-handler.js'
import { logAccess } from './logging.js'
import { buildRateLimits, NO_LIMITS } from './limits/limits.js'
import { createMetrics, type GatewayMetrics } from './metrics.js'
import { ProjectResolver } from './scope/resolve.js'
import { mediaPlugin } from './media/plugin.js'
import {
  LG_ERR_NOT_READY, LG_ERR_POLICY_DENIED, LG_ERR_REQUEST_ABORTED, LG_ERR_REQUEST_BAD_METHOD,
  LG_ERR_REQUEST_NOT_CANONICAL, withDetail
} from './errors.js'
import { MAX_HEADERS } from './edge/canonical.js'
import type { Duplex } from 'node:stream'

export interface AppDeps {
  config: GatewayConfig
  policies: () => PolicySet
  store: IdentityStore
  logger: Logger
  /** Extra Fastify options, such as `https` when the app serves TLS itself. */
  server?: Partial<FastifyServerOptions> & Record<string, unknown>
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Builds the gateway; never listens. Plugins are registered one by one, in security order. */
export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps
  const isTrusted = createTrust(config.server.trustedProxies)
  const setSecurityHeaders = createSecurityHeaders(config)
  const app = Fastify({
    loggerInstance: deps.logger,
    // One access line per request, written by the gateway itself (logging.ts), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    // A request id from the client is believed only from a trusted proxy; otherwise it is ours.
    genReqId: (req) => {
      const inbound = req.headers['x-request-id']
      const trusted = typeof inbound === 'string' && REQUEST_ID.test(inbound) && isTrusted(req.socket.remoteAddress)
      return trusted ? inbound : randomUUID()
    },
    trustProxy: (address: string) => isTrusted(address),
    routerOptions: {
      // A signed media link is one path segment: one to a blob of the longest name takes about 4,500 characters.
      ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, caseSensitive: true, maxParamLength: 8192
    },
    requestTimeout: config.server.requestTimeoutMs,
    // A connection that stays silent this long, mid-request or mid-answer, is closed.
    connectionTimeout: config.server.idleTimeoutMs,
    keepAliveTimeout: config.server.keepAliveTimeoutMs,
    return503OnClosing: true,
    clientErrorHandler: createClientErrorHandler(deps.logger),
    // A URL that Fastify's router cannot decode is refused like any other non-canonical target.
    frameworkErrors: (err, request, reply) => {
      const refused = err.code === 'FST_ERR_BAD_URL'
        ? withDetail(new LG_ERR_REQUEST_NOT_CANONICAL('a malformed percent-encoding'), 'bad-url')
        : err
      request.gate = newGateState()
      setSecurityHeaders(request.raw, reply.raw)
      handleError(refused as FastifyError, request, reply)
      // Fastify runs no hooks for these requests, so the access line is written here.
      logAccess(request, reply)
    },
    ...deps.server
  } as FastifyServerOptions)

  // Node hands CONNECT to a separate event; the gateway tunnels nothing.
  app.server.on('connect', (_req, socket: Duplex) => {
    const error = new LG_ERR_REQUEST_BAD_METHOD('"CONNECT"')
    refuseOnSocket(deps.logger, socket, Object.assign(error, { statusCode: 400 }), 'connect')
  })
  // Node would drop header lines beyond its count silently; one more lets the edge see the excess.
  app.server.maxHeadersCount = MAX_HEADERS + 1

  // Set before any plugin is registered: encapsulated children take the handlers they see then.
  app.setErrorHandler(handleError)
  app.setNotFoundHandler(async (request) => {
    // Reached only by a method the proxy does not carry (OPTIONS) that a policy let through.
    throw withDetail(new LG_ERR_POLICY_DENIED(request.method, 'this path'), 'no-route')
  })

  // 1. Security headers first, so that even a refused request carries them (HSTS on every response).
  await app.register(helmet, helmetOptions(config))
  // 2. Canonical form of the request line and headers, before anything reads them; media paths
  //    then get their sandboxing policy.
  await app.register(edgePlugin, {
    allowedHosts: config.server.allowedHosts,
    maxBodyBytes: config.server.maxBodyBytes,
    ownPort: () => {
      const address = app.server.address()
      return typeof address === 'object' && address !== null ? address.port : config.server.port
    }
  })
  await app.register(mediaHeadersPlugin, { frameOptions: config.headers.frameOptions })
  // 3. CORS: a preflight is answered (or refused) here, before authentication, and never forwarded.
  await app.register(corsPlugin, { cors: config.cors })
  // 4. Rate limits, authentication and the role's decision; nothing is forwarded or read before all pass.
  // One connection pool to Label Studio serves forwarding and the gateway's own questions.
  const agent = createUpstreamAgent(config.upstream)
  app.addHook('onClose', async () => { await agent.close() })
  const sessions = new SessionIntrospector({
    upstreamUrl: config.upstream.url,
    dispatcher: agent,
    store: deps.store,
    ttlMs: config.sessions.cacheTtlMs,
    cookieName: config.sessions.cookieName
  })
  const authenticator = new Authenticator(deps.store, config.identity, sessions)
  // Rate limits run in the access hook: anonymous traffic is counted before the identity store is asked.
  const metrics = createMetrics()
  const limitOptions = { config: config.rateLimits, store: config.identity.store, logger: deps.logger, metrics }
  const limits = config.rateLimits.enabled ? await buildRateLimits(app, limitOptions) : NO_LIMITS
  await app.register(accessPlugin, {
    authenticator,
    policies: deps.policies,
    sessions: config.sessions,
    publicOrigin: config.server.publicOrigin,
    limits
  })
  // 5. The gateway's own routes: health, then media it serves itself; everything else to Label Studio.
  registerInternalRoutes(app, deps.store, metrics)
  const resolver = new ProjectResolver({
    upstreamUrl: config.upstream.url,
    dispatcher: agent,
    store: deps.store,
    ttlMs: config.policies.projectCacheTtlMs,
    maxBytes: config.filters.responseMaxBytes
  })
  await app.register(mediaPlugin, {
    storage: config.storage,
    upstream: config.upstream,
    filters: config.filters,
    publicOrigin: config.server.publicOrigin,
    store: deps.store,
    resolver,
    upstreamAgent: agent,
    metrics,
    policies: deps.policies,
    defaultRole: config.identity.defaultRole
  })
  await app.register(proxyPlugin, {
    agent,
    sessions: config.sessions,
    signup: config.signup,
    maxBodyBytes: config.server.maxBodyBytes,
    upstream: config.upstream,
    filters: config.filters,
    isTrusted,
    resolver
  })

  app.addHook('onResponse', async (request, reply) => logAccess(request, reply))
  app.addHook('onRequestAbort', async (request) => {
    // The client left before its request was whole: no response will finish, so log it here.
    if (request.gate) {
      request.gate.code = new LG_ERR_REQUEST_ABORTED().code
      request.gate.detail = 'client-aborted'
    }
    logAccess(request, null)
  })
  return app
}

function registerInternalRoutes (app: FastifyInstance, store: IdentityStore, metrics: GatewayMetrics): void {
  const config = { internal: true }
  app.get('/-/healthz', { config }, async () => ({ status: 'ok' }))
  app.get('/-/metrics', { config }, async (_request, reply) => {
    reply.type(metrics.registry.contentType)
    return await metrics.registry.metrics()
  })
  app.get('/-/readyz', { config }, async () => {
    try {
      await store.ping()
    } catch (err) {
      throw withDetail(new LG_ERR_NOT_READY('the identity store does not answer', { cause: err }), 'store-ping')
    }
    return { status: 'ready', store: store.kind }
  })
}
