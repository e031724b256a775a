import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import rateLimit, { normalizeIP, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config/types.js'
import { LG_ERR_RATE_LIMITED, withDetail } from '../errors.js'
import { redisOptions, redisReady } from '../identity/redis-store.js'
import type { GatewayMetrics, LimitBucket } from '../metrics.js'
import { normalised } from '../policy/template.js'
import { LimitStore } from './store.js'

// Rate limits, in the order the access hook calls them:
//   1. before authentication, a request without a credential counts against its client address;
//      one whose credential would be looked up in the identity store is only checked against it:
//      an address whose budget is spent gets 429 before its token reaches the store, so a flood of
//      invented tokens is bounded (a token the replica holds in memory costs the store nothing,
//      and is not held back by its address);
//   2. a credential that fails counts against its address;
//   3. after authentication, a request counts against its user.
// Login, signup and token endpoints count in a stricter bucket too, per user or per address.

/** Label Studio's login, signup and token routes, with everything under them (research 1.2). */
const AUTH_ENDPOINTS = [
  '/user/login', '/user/signup', '/api/current-user/token', '/api/current-user/reset-token', '/api/token', '/api/invite'
]

export function isAuthEndpoint (path: string): boolean {
  const p = normalised(path)
  return AUTH_ENDPOINTS.some((e) => p === e || p.startsWith(e + '/'))
}

/** What the request carries: no credential, one this replica does not hold in memory, or one it holds. */
export type CredentialState = 'none' | 'unknown' | 'remembered'

export interface RequestLimits {
  /** Counts an anonymous request against its address, or checks a credential's address without counting. */
  beforeAuthentication (request: FastifyRequest, reply: FastifyReply, credential: CredentialState): Promise<void>
  /** Counts a credential that failed against its address; never refuses (the caller answers 401). */
  afterFailure (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Counts an authenticated request against its user. */
  afterAuthentication (request: FastifyRequest, reply: FastifyReply): Promise<void>
}

export const NO_LIMITS: RequestLimits = {
  beforeAuthentication: async () => {},
  afterFailure: async () => {},
  afterAuthentication: async () => {}
}

export interface LimitsOptions {
  config: GatewayConfig['rateLimits']
  store: GatewayConfig['identity']['store']
  logger: Logger
  metrics: GatewayMetrics
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>

function address (request: FastifyRequest): string {
  // request.ip believes X-Forwarded-For only from server.trusted_proxies; an IPv6 client counts
  // by its /64, which one host usually holds whole.
  return normalizeIP(request.ip)
}

/** Registers @fastify/rate-limit with the gateway's store and returns the buckets the access hook uses. */
export async function buildRateLimits (app: FastifyInstance, options: LimitsOptions): Promise<RequestLimits> {
  const { config, metrics } = options
  const store = await openLimitStore(app, options)
  await app.register(rateLimit, {
    global: false,
    timeWindow: config.windowMs,
    // The plugin builds its store with `new`; a constructor that returns an object yields that object.
    store: function boundStore () { return store } as unknown as FastifyRateLimitStoreCtor
  })
  const byAddress = app.createRateLimit({ max: config.anonymousMax, keyGenerator: (r) => `address:${address(r)}` })
  const byUser = app.createRateLimit({ max: config.max, keyGenerator: (r) => `user:${r.gate.principal?.user}` })
  const authEndpoint = app.createRateLimit({
    max: config.authEndpointsMax,
    keyGenerator: (r) => {
      const user = r.gate.principal?.user
      return user ? `auth-endpoint:user:${user}` : `auth-endpoint:address:${address(r)}`
    }
  })

  async function admit (limiter: Limiter, bucket: LimitBucket, request: FastifyRequest, reply: FastifyReply,
    mode: 'count' | 'check' | 'count-only'): Promise<void> {
    const result = await limiter(request, mode === 'check' ? { increment: false } : undefined)
    if (result.isAllowed) return
    // A check sees the count before this request: a full budget is one with nothing remaining.
    const over = mode === 'check' ? result.remaining === 0 : result.isExceeded
    if (!over || mode === 'count-only') {
      if (mode !== 'check') headers(reply, result.max, result.remaining, result.ttlInSeconds)
      return
    }
    metrics.rateLimited.inc({ bucket })
    headers(reply, result.max, 0, result.ttlInSeconds, true)
    reply.header('retry-after', result.ttlInSeconds)
    throw withDetail(new LG_ERR_RATE_LIMITED(result.ttlInSeconds), `${bucket}-bucket`)
  }

  const onAuthEndpoint = (request: FastifyRequest): boolean => isAuthEndpoint(request.gate.target?.path ?? '/')
  return {
    beforeAuthentication: async (request, reply, credential) => {
      if (credential === 'remembered') return
      if (credential === 'unknown') return await admit(byAddress, 'address', request, reply, 'check')
      await admit(byAddress, 'address', request, reply, 'count')
      if (onAuthEndpoint(request)) await admit(authEndpoint, 'auth-endpoint', request, reply, 'count')
    },
    afterFailure: async (request, reply) => await admit(byAddress, 'address', request, reply, 'count-only'),
    afterAuthentication: async (request, reply) => {
      await admit(byUser, 'user', request, reply, 'count')
      if (onAuthEndpoint(request)) await admit(authEndpoint, 'auth-endpoint', request, reply, 'count')
    }
  }
}

/** The headers describe the fullest bucket the request was counted in. */
function headers (reply: FastifyReply, max: number, remaining: number, reset: number, refused = false): void {
  const shown = reply.getHeader('x-ratelimit-remaining')
  if (!refused && shown !== undefined && Number(shown) < remaining) return
  reply.header('x-ratelimit-limit', max)
  reply.header('x-ratelimit-remaining', remaining)
  reply.header('x-ratelimit-reset', reset)
}

/**
 * Counts in Redis when the identity store is Redis, on a connection of its own with the same
 * settings (URL, ACL user, TLS client certificate) under `<key_prefix>ratelimit:`; else in memory.
 */
async function openLimitStore (app: FastifyInstance, options: LimitsOptions): Promise<LimitStore> {
  const { store: identity, logger, metrics } = options
  if (identity.kind !== 'redis') return new LimitStore(null)
  // Counts of concurrent requests go out together, one write for all that are ready at once.
  const client = new Redis(identity.url, { ...redisOptions(identity), enableAutoPipelining: true })
  // Failures surface as failed counts, which the store turns into its fallback.
  client.on('error', () => {})
  // A Redis that is not there yet is a fallback from the first count, with its log line.
  await redisReady(client, identity).catch(() => {})
  metrics.rateLimitFallback.set(0)
  const store = new LimitStore({
    client,
    namespace: `${identity.keyPrefix}ratelimit:`,
    events: {
      fallback: (err) => {
        metrics.rateLimitFallback.set(1)
        metrics.rateLimitFallbacks.inc()
        logger.warn({ err: err.message }, 'rate limits count in this process: Redis does not answer')
      },
      recover: () => {
        metrics.rateLimitFallback.set(0)
        logger.info('rate limits count in Redis again')
      }
    }
  })
  app.addHook('onClose', async () => {
    store.close()
    await client.quit().catch(() => {})
    client.disconnect()
  })
  return store
}
