// Test scaffolding: the HTTP plumbing of the Label Studio stand-in: replies in Label Studio's shapes,
// request bodies read as Django reads them, and who is calling (token, access JWT or session cookie).

import { STATUS_CODES } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { isJsonObject, now } from './labelstudio-standin-data.js'
import type { JsonObject, JsonValue, StandInState, StandInUser, Table } from './labelstudio-standin-data.js'
import { parseCookies } from './labelstudio-standin-browser.js'

export interface Reply { status: number, headers: Record<string, string>, payload: string | Buffer }

export interface RouteContext {
  state: StandInState
  headers: IncomingHttpHeaders
  user: StandInUser | null
  params: Record<string, number>
  query: URLSearchParams
  origin: string
  pathname: string
  data: () => JsonValue | undefined
}

export type Handler = (ctx: RouteContext) => Reply
export interface Route { path: string, pattern: RegExp, isPublic: boolean, methods: Record<string, Handler> }
export type Auth = { user: StandInUser } | { none: true } | { invalid: string }

export class HttpFailure extends Error {
  constructor (readonly status: number, readonly body: JsonValue) {
    super(`HTTP ${status}`)
  }
}

export const NOT_FOUND = { detail: 'Not found.' }
export const JSON_TYPE = 'application/json'
export const HTML_TYPE = 'text/html; charset=utf-8'
export const FORM_TYPE = 'application/x-www-form-urlencoded'

export function json (status: number, body: JsonValue, headers: Record<string, string> = {}): Reply {
  const all = { 'content-type': JSON_TYPE, vary: 'Accept, Cookie', ...headers }
  return { status, headers: all, payload: JSON.stringify(body) }
}

export const noContent = (): Reply => ({ status: 204, headers: { vary: 'Accept, Cookie' }, payload: '' })
export const detail = (status: number): Reply => json(status, { detail: STATUS_CODES[status] ?? `Status ${status}` })

export function mediaType (headers: IncomingHttpHeaders): string {
  return (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

export function parseBody (headers: IncomingHttpHeaders, body: Buffer): JsonValue | undefined {
  const type = mediaType(headers)
  if (type === FORM_TYPE) return Object.fromEntries(new URLSearchParams(body.toString('utf8')))
  if (type !== JSON_TYPE && !type.endsWith('+json')) return undefined
  if (body.length === 0) return {}
  try {
    return JSON.parse(body.toString('utf8')) as JsonValue
  } catch {
    throw new HttpFailure(400, { detail: 'JSON parse error' })
  }
}

export function authenticate (headers: IncomingHttpHeaders, state: StandInState): Auth {
  const users = state.users
  // Label Studio's XApiKeySupportMiddleware turns X-Api-Key into `Authorization: Token`, overriding it.
  const apiKey = headers['x-api-key']
  const header = typeof apiKey === 'string' ? `Token ${apiKey}` : headers.authorization ?? ''
  const parts = header.split(/\s+/).filter((p) => p !== '')
  // JWTAuthenticationMiddleware: a valid Bearer JWT signs the user in; anything else it ignores.
  if (parts[0] === 'Bearer' && parts.length === 2) {
    const id = state.browser.verify(parts[1] as string)
    const user = users.find((u) => u.id === id)
    return user === undefined ? { none: true } : { user }
  }
  if (parts[0]?.toLowerCase() !== 'token') {
    // SessionAuthentication: the signed-in session of the sessionid cookie.
    const id = state.browser.userOf(parseCookies(headers.cookie).sessionid)
    const user = users.find((u) => u.id === id)
    return user === undefined ? { none: true } : { user }
  }
  if (parts.length === 1) return { invalid: 'Invalid token header. No credentials provided.' }
  if (parts.length > 2) return { invalid: 'Invalid token header. Token string should not contain spaces.' }
  const user = users.find((u) => u.token === parts[1])
  return user === undefined ? { invalid: 'Invalid token.' } : { user }
}

export function authFailure (auth: Auth): Reply | null {
  if ('user' in auth) return null
  const message = 'invalid' in auth ? auth.invalid : 'Authentication credentials were not provided.'
  return json(401, { detail: message }, { 'www-authenticate': 'Token' })
}

export function caller (ctx: RouteContext): StandInUser {
  if (ctx.user === null) throw new Error('Label Studio stand-in: a protected route ran without a user')
  return ctx.user
}

export function must (table: Table, id: number | undefined): JsonObject {
  const row = table.find(id)
  if (row === undefined) throw new HttpFailure(404, NOT_FOUND)
  return row
}

export function dataObject (ctx: RouteContext): JsonObject {
  const data = ctx.data()
  if (data === undefined) return {}
  if (isJsonObject(data)) return data
  const got = Array.isArray(data) ? 'list' : typeof data
  throw new HttpFailure(400, { non_field_errors: [`Invalid data. Expected a dictionary, but got ${got}.`] })
}

export function requireFields (data: JsonObject, fields: readonly string[]): void {
  const missing = fields.filter((f) => data[f] === undefined || data[f] === null)
  if (missing.length === 0) return
  throw new HttpFailure(400, Object.fromEntries(missing.map((f) => [f, ['This field is required.']])))
}

export function patchRow (row: JsonObject, data: JsonObject, extra: JsonObject = {}): JsonObject {
  const { id: _ignored, ...changes } = data
  Object.assign(row, changes, extra, { updated_at: now() })
  return row
}
