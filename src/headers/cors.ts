import fp from 'fastify-plugin'
import cors, { type FastifyCorsOptions } from '@fastify/cors'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config/types.js'
import { LG_ERR_CORS_ORIGIN_DENIED, withDetail } from '../errors.js'
import { PROXIED_METHODS } from '../proxy/plugin.js'

export interface CorsOptions {
  cors: GatewayConfig['cors']
}

/** A CORS preflight as the Fetch standard defines it: OPTIONS with Origin and the method it asks for. */
export function isPreflight (request: FastifyRequest): boolean {
  return request.method === 'OPTIONS' && request.headers.origin !== undefined &&
    request.headers['access-control-request-method'] !== undefined
}

/**
 * @fastify/cors, with the origin decided per request: a listed origin gets the Access-Control-*
 * headers (and its preflight an answer here, before authentication, never forwarded); any other
 * origin gets none, and its preflight a 403. Every response varies on Origin.
 */
async function gatewayCors (app: FastifyInstance, options: CorsOptions): Promise<void> {
  const config = options.cors
  const listedOrigins = new Set(config.origins)
  const listed: FastifyCorsOptions = {
    // true reflects the request's Origin, which has just been found in the list.
    origin: true,
    credentials: config.credentials,
    methods: PROXIED_METHODS,
    allowedHeaders: config.allowedHeaders,
    ...(config.exposedHeaders.length > 0 ? { exposedHeaders: config.exposedHeaders } : {}),
    maxAge: config.maxAgeSeconds,
    // An OPTIONS without Access-Control-Request-Method is no preflight: the policy decides it.
    strictPreflight: false,
    preflight: false
  }
  const listedPreflight: FastifyCorsOptions = { ...listed, preflight: true }
  const unlisted: FastifyCorsOptions = { origin: false }

  await app.register(cors, {
    hook: 'onRequest',
    delegator: async (request: FastifyRequest) => {
      const origin = request.headers.origin
      const preflight = isPreflight(request)
      if (origin !== undefined && listedOrigins.has(origin)) {
        if (!preflight) return listed
        request.gate.preflight = true
        request.gate.detail = 'cors-preflight'
        return listedPreflight
      }
      if (preflight) throw withDetail(new LG_ERR_CORS_ORIGIN_DENIED(), 'cors-origin')
      return unlisted
    }
  })
}

export const corsPlugin = fp(gatewayCors, {
  name: 'labelgate-cors', fastify: '5.x', dependencies: ['labelgate-edge']
})
