import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import {
  LG_ERR_REQUEST_BAD_HEADER, LG_ERR_REQUEST_BAD_METHOD, LG_ERR_REQUEST_HEADERS_TOO_LARGE, LG_ERR_REQUEST_MALFORMED,
  LG_ERR_REQUEST_METHOD_OVERRIDE, LG_ERR_REQUEST_NOT_CANONICAL, LG_ERR_REQUEST_UNKNOWN_HOST,
  LG_ERR_REQUEST_BODY_TOO_LARGE, withDetail
} from '../errors.js'
import type { GateState } from '../types/fastify.js'
import type { GatewayConfig } from '../config/types.js'
import { ACCEPTED_METHODS, checkHeaders, checkTarget } from './canonical.js'
import { hostAllowed } from './host.js'

export function newGateState (): GateState {
  return {
    target: null,
    principal: null,
    decision: null,
    code: null,
    detail: null,
    upstream: null,
    forwardedLength: null,
    project: null,
    projectList: null,
    upstreamQuery: null,
    upstreamCookie: null,
    originChecked: false,
    preflight: false,
    media: null,
    logged: false
  }
}

export interface EdgeOptions {
  allowedHosts: GatewayConfig['server']['allowedHosts']
  maxBodyBytes: number
  /** The port the gateway listens on, known once it does. */
  ownPort: () => number
}

/** The first hook of every request: refuse any request whose meaning two HTTP stacks could disagree on. */
async function edge (app: FastifyInstance, options: EdgeOptions): Promise<void> {
  // Null at registration keeps the request shape stable; the hook below fills it for every request.
  app.decorateRequest('gate', null as unknown as GateState)

  app.addHook('onRequest', async (request) => {
    request.gate = newGateState()
    const method = request.raw.method ?? ''
    if (!ACCEPTED_METHODS.has(method)) throw withDetail(new LG_ERR_REQUEST_BAD_METHOD(JSON.stringify(method)), 'method')
    if (request.raw.httpVersionMajor !== 1) throw withDetail(new LG_ERR_REQUEST_MALFORMED(), 'http-version')
    const headers = checkHeaders(request.raw.rawHeaders)
    if (headers?.kind === 'too-many') throw withDetail(new LG_ERR_REQUEST_HEADERS_TOO_LARGE(), 'header-count')
    if (headers?.kind === 'override') {
      throw withDetail(new LG_ERR_REQUEST_METHOD_OVERRIDE(headers.message), 'override-header')
    }
    if (headers) throw withDetail(new LG_ERR_REQUEST_BAD_HEADER(headers.message), 'header')
    if (!hostAllowed(request.headers.host, options.allowedHosts, options.ownPort())) {
      throw withDetail(new LG_ERR_REQUEST_UNKNOWN_HOST(), 'host')
    }
    const length = request.headers['content-length']
    if (length !== undefined && Number(length) > options.maxBodyBytes) {
      throw withDetail(new LG_ERR_REQUEST_BODY_TOO_LARGE(String(options.maxBodyBytes)), 'content-length')
    }
    const result = checkTarget(request.raw.url ?? '')
    if ('problem' in result) {
      if (result.problem === 'a _method parameter') {
        throw withDetail(new LG_ERR_REQUEST_METHOD_OVERRIDE(result.problem), 'override-param')
      }
      throw withDetail(new LG_ERR_REQUEST_NOT_CANONICAL(result.problem), 'target')
    }
    request.gate.target = result.target
  })
}

export const edgePlugin = fp(edge, { name: 'labelgate-edge', fastify: '5.x' })
