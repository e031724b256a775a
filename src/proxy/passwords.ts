import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config/types.js'
import {
  LG_ERR_PASSWORD_POLICY, LG_ERR_REQUEST_BAD_JSON, LG_ERR_REQUEST_BODY_TOO_LARGE, LG_ERR_REQUEST_NOT_FORM,
  LG_ERR_REQUEST_NOT_JSON, LG_ERR_SIGNUP_CLOSED, withDetail
} from '../errors.js'
import { safeParse as parseContentType } from 'fast-content-type-parse'
import { bodyKind, parseStrictJson } from '../policy/body.js'
import { readLimited } from './bodies.js'

// Signup and password rules, applied by the gateway whatever the role's policy says: Label
// Studio's signup form is open by default, and it takes any password its validators let through.

const SIGNUP = /^\/user\/signup\/?$/
/** Where Label Studio accepts a password in a JSON, form or multipart body. */
const PASSWORD_ROUTES = [/^\/api\/users\/?$/, /^\/api\/users\/[0-9]+\/?$/, /^\/api\/current-user\/?$/]
const WRITES = new Set(['POST', 'PUT', 'PATCH'])

/** Refuses signup as the configured mode says: closed, or an invite without its token. */
export function checkSignupMode (path: string, query: string, signup: GatewayConfig['signup']): void {
  if (!SIGNUP.test(path) || signup.mode === 'open') return
  if (signup.mode === 'closed') throw withDetail(new LG_ERR_SIGNUP_CLOSED('signup is closed'), 'signup-closed')
  const token = new URLSearchParams(query).getAll('token')
  if (token.length !== 1 || token[0]?.trim() === '') {
    throw withDetail(new LG_ERR_SIGNUP_CLOSED('signup needs the invite link'), 'signup-without-invite')
  }
}

function passwordProblem (value: unknown, signup: GatewayConfig['signup']): string | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') return 'the password must be text'
  // Django counts characters (code points), not bytes.
  const length = [...value].length
  if (length < signup.passwordMinLength) return `the password must have at least ${signup.passwordMinLength} characters`
  if (length > signup.passwordMaxLength) return `the password must have at most ${signup.passwordMaxLength} characters`
  return null
}

function refuse (problem: string | null): void {
  if (problem !== null) throw withDetail(new LG_ERR_PASSWORD_POLICY(problem), 'password-policy')
}

async function bodyBytes (request: FastifyRequest, limit: number): Promise<Buffer | null> {
  const body = request.body
  if (body === undefined || body === null) return null
  const raw = typeof (body as Readable).pipe === 'function'
    ? await readLimited(body as Readable, limit)
    : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  if (raw === null || raw.length > limit) {
    throw withDetail(new LG_ERR_REQUEST_BODY_TOO_LARGE(String(limit)), 'password-body-too-large')
  }
  return raw
}

function forward (request: FastifyRequest, bytes: Buffer): void {
  request.body = Readable.from([bytes])
  request.gate.forwardedLength = bytes.length
}

/**
 * Checks every password a write carries: the signup form's, and the JSON body's on the user
 * routes. `parsed` is the body when the rule's field check has read it already. A body the gateway
 * cannot read there (form or multipart on a user route) is refused, since it could carry one.
 */
export async function checkPasswords (
  request: FastifyRequest, parsed: unknown, config: Pick<GatewayConfig, 'signup' | 'filters'> & { maxBodyBytes: number }
): Promise<void> {
  const path = request.gate.target?.path ?? ''
  if (!WRITES.has(request.method)) return
  const type = request.headers['content-type']
  const limit = Math.min(config.filters.requestMaxBytes, config.maxBodyBytes)
  if (SIGNUP.test(path)) {
    // The form is read as UTF-8: another charset would make Label Studio read other passwords.
    const charset = type === undefined ? undefined : parseContentType(type).parameters.charset?.toLowerCase()
    if (bodyKind(type) !== 'form' || (charset !== undefined && charset !== 'utf-8')) {
      throw withDetail(new LG_ERR_REQUEST_NOT_FORM(), 'signup-not-form')
    }
    const raw = await bodyBytes(request, limit)
    if (raw === null) return
    // Django reads the last of repeated fields; every one is checked.
    const passwords = new URLSearchParams(raw.toString('utf8')).getAll('password')
    for (const value of passwords) refuse(passwordProblem(value, config.signup))
    forward(request, raw)
    return
  }
  if (!PASSWORD_ROUTES.some((r) => r.test(path))) return
  if (parsed !== undefined) {
    refuse(passwordProblem((parsed as Record<string, unknown> | null)?.password, config.signup))
    return
  }
  const raw = await bodyBytes(request, limit)
  if (raw === null) return
  if (bodyKind(type) !== 'json') {
    throw withDetail(new LG_ERR_REQUEST_NOT_JSON('a user update is read for its password'), 'password-not-json')
  }
  const value = parseStrictJson(raw.toString('utf8'))
  if (!('value' in value)) throw withDetail(new LG_ERR_REQUEST_BAD_JSON(value.error), 'password-bad-json')
  const fields = value.value
  if (typeof fields === 'object' && fields !== null && !Array.isArray(fields)) {
    refuse(passwordProblem((fields as Record<string, unknown>).password, config.signup))
  }
  forward(request, Buffer.from(JSON.stringify(fields), 'utf8'))
  request.raw.headers['content-type'] = 'application/json'
}
