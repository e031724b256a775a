import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import {
  LG_ERR_REQUEST_BAD_HEADER, LG_ERR_REQUEST_BAD_METHOD, LG_ERR_REQUEST_HEADERS_TOO_LARGE, LG_ERR_REQUEST_MALFORMED,
  LG_ERR_REQUEST_METHOD_OVERRIDE,
  LG_ERR_REQUEST_NOT_CANONICAL, withDetail
} from '../errors.js'
import type { GateState } from '../types/fastify.js'
import { ACCEPTED_METHODS, checkHeaders, checkTarget } from './canonical.js'

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
    logged: false
  }
}

/** The first hook of every request: refuse any request whose meaning two HTTP stacks could disagree on. */
async function edge (app: FastifyInstance): Promise<void> {
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
