import { Readable, Transform } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config/types.js'
import * as errors from '../errors.js'
import { LG_ERR_UPSTREAM_BAD_RESPONSE, withDetail } from '../errors.js'
import { bodyKind, jsonDepth, judgeContentType, judgeJson, type BodyRefusal } from '../policy/body.js'

/** Responses nested deeper than this are refused rather than filtered; Label Studio's go a dozen deep. */
const MAX_RESPONSE_DEPTH = 512
import { responseForClient } from '../policy/simulate.js'
import type { GateState } from '../types/fastify.js'
import type { CompiledRule } from '../policy/compile.js'

// The two places where the gateway reads bodies instead of streaming them: requests on rules with
// a request field list, and successful responses on rules with a response field list.

/**
 * Reads a whole stream, or returns null as soon as it passes `limit` bytes. The rest is then read
 * and discarded, so that the client can still read the refusal instead of a reset connection.
 */
/**
 * Drops an answer's body that is not wanted. Its bytes are read and thrown away (so that the
 * connection can be reused), and a failure while they drain, a timeout included, changes nothing:
 * a bare resume() would leave such an error unhandled, and an unhandled stream error ends the process.
 */
export function discard (body: { dump: () => Promise<void> }): void {
  body.dump().catch(() => {})
}

export async function readLimited (stream: Readable, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    size += (chunk as Buffer).length
    if (size > limit) {
      stream.resume()
      return null
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** The request body as bytes, however Fastify holds it; null when there is none. */
async function requestBytes (body: unknown, limit: number): Promise<Buffer | null | 'too-large'> {
  if (body === undefined || body === null) return null
  const raw = isStream(body)
    ? await readLimited(body, limit)
    : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  if (raw === null || raw.length > limit) return 'too-large'
  return raw
}

function isStream (value: unknown): value is Readable {
  return typeof value === 'object' && value !== null && typeof (value as Readable).pipe === 'function'
}

function refusal (r: BodyRefusal): Error {
  const Ctor = errors[r.code]
  return withDetail(new Ctor(r.message), r.code === 'LG_ERR_POLICY_FIELD_DENIED' ? 'request-fields' : 'request-body')
}

/**
 * Applies a rule's request spec. Afterwards `request.body` holds the parsed value, and the proxy
 * forwards the gateway's own serialisation of it, never the client's bytes.
 */
export async function checkRequestBody (
  request: FastifyRequest, rule: CompiledRule, filters: GatewayConfig['filters'], maxBodyBytes = Infinity
): Promise<unknown> {
  const spec = rule.request
  if (spec === null || request.body === undefined || request.body === null) return undefined
  const encoding = request.headers['content-encoding']
  const handling = judgeContentType(spec, request.headers['content-type'],
    Array.isArray(encoding) ? encoding.join(',') : encoding)
  if (handling === 'stream' && isStream(request.body)) return undefined
  if (handling !== 'json' && handling !== 'stream') throw refusal(handling)
  // server.max_body_bytes caps every body, those the gateway reads as well as those it streams.
  const limit = Math.min(spec.maxBytes ?? filters.requestMaxBytes, maxBodyBytes)
  const raw = await requestBytes(request.body, limit)
  if (raw === null) return undefined
  if (raw === 'too-large') throw refusal({ code: 'LG_ERR_REQUEST_BODY_TOO_LARGE', message: String(limit) })
  const result = judgeJson(spec, raw.toString('utf8'))
  if (!('value' in result)) throw refusal(result)
  // The gateway forwards its own bytes, with their own length and the canonical media type, so
  // that every value (0, false and null included) goes upstream exactly as it was checked.
  const bytes = Buffer.from(JSON.stringify(result.value), 'utf8')
  request.body = Readable.from([bytes])
  request.gate.forwardedLength = bytes.length
  request.raw.headers['content-type'] = 'application/json'
  return result.value
}

/**
 * A body the gateway streams unread is counted as it passes: past `max` bytes the stream fails, and
 * the request is answered 413 (a body announced as larger never gets this far).
 */
export function capStreamedBody (request: FastifyRequest, max: number): void {
  const body = request.body
  if (!isStream(body) || request.gate.forwardedLength !== null) return
  let seen = 0
  const counted = new Transform({
    transform (chunk: Buffer, _encoding, done) {
      seen += chunk.length
      if (seen > max) {
        done(withDetail(new errors.LG_ERR_REQUEST_BODY_TOO_LARGE(String(max)), 'streamed-body'))
        return
      }
      done(null, chunk)
    }
  })
  body.on('error', (err) => counted.destroy(err))
  request.body = body.pipe(counted)
}

/** True when a response the gateway filters must be buffered rather than streamed: a success with a body. */
export function filtersResponse (filtered: boolean, status: number): boolean {
  return filtered && status >= 200 && status < 400 && status !== 204 && status !== 304
}

// Upstream headers that describe the unfiltered body: never sent with a filtered one or its refusal.
const BODY_HEADERS = [
  'content-length', 'content-encoding', 'content-range', 'etag', 'last-modified', 'content-md5', 'digest'
]

/** The parts of a reply that filtering uses, whichever server type Fastify runs on. */
interface FilteredReply {
  getHeader: (name: string) => unknown
  removeHeader: (name: string) => unknown
  type: (contentType: string) => FilteredReply
  send: (payload: unknown) => unknown
}

/**
 * Filters a successful upstream response through the rule's response field list and the global
 * drop list. Anything the gateway cannot read as JSON, or that is too large, is never passed on.
 */
export async function sendFiltered (
  reply: FilteredReply, rule: CompiledRule, stream: Readable, filters: GatewayConfig['filters'],
  method: string, status: number, list: GateState['projectList'] = null
): Promise<void> {
  // The upstream's headers are already on the reply.
  const contentType = reply.getHeader('content-type')
  const encoding = reply.getHeader('content-encoding')
  const fail = (detail: string): void => {
    stream.destroy()
    for (const name of [...BODY_HEADERS, 'set-cookie', 'content-disposition', 'content-type']) reply.removeHeader(name)
    reply.send(withDetail(new LG_ERR_UPSTREAM_BAD_RESPONSE(), detail))
  }
  for (const name of BODY_HEADERS) {
    if (name !== 'content-encoding' && name !== 'content-length') reply.removeHeader(name)
  }
  if (method === 'HEAD' || status >= 300) {
    // No filtered body to measure (HEAD), or a redirect whose body nobody needs: send none.
    stream.destroy()
    reply.removeHeader('content-length')
    reply.removeHeader('content-encoding')
    if (status >= 300) reply.removeHeader('content-type')
    reply.send(method === 'HEAD' ? undefined : '')
    return
  }
  const kind = bodyKind(typeof contentType === 'string' ? contentType : undefined)
  if (kind !== 'json') return fail('response-not-json')
  if (encoding !== undefined && encoding !== 'identity') return fail('response-encoded')
  const raw = await readLimited(stream, filters.responseMaxBytes)
  if (raw === null) return fail('response-too-large')
  if (raw.length === 0) {
    // Nothing to filter and nothing to leak: an empty answer stays empty.
    reply.removeHeader('content-length')
    reply.send('')
    return
  }
  const text = raw.toString('utf8')
  if (jsonDepth(text) > MAX_RESPONSE_DEPTH) return fail('response-too-deep')
  let kept: unknown
  try {
    kept = JSON.parse(text)
  } catch {
    return fail('response-bad-json')
  }
  const sent = responseForClient(rule, kept, filters.dropFields, list)
  if ('error' in sent) return fail(sent.error)
  kept = sent.body
  reply.removeHeader('content-length')
  reply.type('application/json').send(JSON.stringify(kept))
}
