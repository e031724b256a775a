import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import {
  LG_ERR_INTERNAL, LG_ERR_REQUEST_BAD_HEADER, LG_ERR_REQUEST_HEADERS_TOO_LARGE, LG_ERR_REQUEST_MALFORMED,
  LG_ERR_REQUEST_TIMEOUT, type GatewayError
} from './errors.js'

/** The one JSON body for everything the gateway answers itself. */
export interface ErrorBody {
  statusCode: number
  error: string
  code: string
  message: string
  requestId: string
}

function normalise (err: FastifyError | GatewayError): GatewayError & { statusCode: number } {
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const refused = new LG_ERR_REQUEST_BAD_HEADER('a malformed Content-Type')
    return Object.assign(refused, { statusCode: 400, detail: err.code })
  }
  const status = err.statusCode ?? 500
  // Anything without a code of its own, or any other 5xx we did not define, is an internal fault:
  // its message may hold details that must stay in the log.
  if (!err.code || (status >= 500 && !err.code.startsWith('LG_ERR_'))) {
    return Object.assign(new LG_ERR_INTERNAL({ cause: err }), { statusCode: 500, detail: err.code ?? err.message })
  }
  return Object.assign(err, { statusCode: status })
}

export function errorBody (err: GatewayError & { statusCode: number }, requestId: string): ErrorBody {
  return {
    statusCode: err.statusCode,
    error: STATUS_CODES[err.statusCode] ?? 'Error',
    code: err.code,
    message: err.message,
    requestId
  }
}

export function handleError (raw: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const err = normalise(raw)
  const gate = (request.gate as FastifyRequest['gate'] | undefined) ?? null
  if (gate) {
    gate.code = err.code
    gate.detail = err.detail ?? null
  }
  if (err.statusCode >= 500) request.log.warn({ err: raw, code: err.code }, 'request failed')
  if (err.statusCode === 401) reply.header('www-authenticate', 'Token realm="labelgate", Bearer realm="labelgate"')
  reply.header('x-request-id', request.id)
  // A body refused half-read leaves the connection in an unknown state: never reuse it.
  if (err.code === 'LG_ERR_REQUEST_BODY_TOO_LARGE') reply.header('connection', 'close')
  reply.code(err.statusCode).type('application/json; charset=utf-8').send(errorBody(err, request.id))
}

/**
 * Answers on a bare socket, for what never becomes a Fastify request: input Node's HTTP parser
 * rejects, and CONNECT. The client still gets the gateway's error body, and the log a line with
 * the same decision fields as every other request.
 */
type Refusal = GatewayError & { statusCode: number }

export function refuseOnSocket (logger: Logger, socket: Duplex, error: Refusal, detail: string): void {
  const requestId = randomUUID()
  logger.info({
    reqId: requestId,
    method: null,
    route: null,
    statusCode: error.statusCode,
    user: null,
    role: null,
    decision: { granted: false, reason: error.code, detail },
    rule: null,
    upstream: null
  }, 'request')
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = JSON.stringify(errorBody(error, requestId))
  socket.end(`HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`)
}

function parserError (code: string | undefined): GatewayError & { statusCode: number } {
  const error = code === 'HPE_HEADER_OVERFLOW'
    ? new LG_ERR_REQUEST_HEADERS_TOO_LARGE()
    : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new LG_ERR_REQUEST_TIMEOUT() : new LG_ERR_REQUEST_MALFORMED()
  return Object.assign(error, { statusCode: error.statusCode as number })
}

export function createClientErrorHandler (logger: Logger): (err: Error & { code?: string }, socket: Duplex) => void {
  return (err, socket) => {
    // A client that went away mid-request is not a malformed request: its request, if it had
    // one, is logged by the abort hook.
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) {
      socket.destroy()
      return
    }
    refuseOnSocket(logger, socket, parserError(err.code), err.code ?? 'parse-error')
  }
}
