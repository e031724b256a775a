// Test scaffolding: how Label Studio treats browsers, for the stand-in. Django's CSRF check on the
// login and signup forms (Origin against the scheme and host Django believes it serves, then the
// csrftoken cookie against the form's csrfmiddlewaretoken), signed-in sessions in a `sessionid`
// cookie, and simplejwt access tokens (HS256, `exp`) sent as `Authorization: Bearer`.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

export interface BrowserUser { id: number, email: string, password?: string }

/** Every stand-in user's password, unless given: the part of the e-mail before @, then "-password". */
export function passwordOf (user: BrowserUser): string {
  return user.password ?? `${user.email.split('@')[0] ?? ''}-password`
}

export class BrowserSessions {
  readonly #sessions = new Map<string, number>()
  readonly #secret = randomBytes(32)

  /** A new signed-in session for the user; returns the `sessionid` value. */
  open (userId: number): string {
    const id = randomBytes(20).toString('hex')
    this.#sessions.set(id, userId)
    return id
  }

  userOf (sessionId: string | undefined): number | null {
    return sessionId === undefined ? null : this.#sessions.get(sessionId) ?? null
  }

  close (sessionId: string | undefined): void {
    if (sessionId !== undefined) this.#sessions.delete(sessionId)
  }

  /** A simplejwt-style access token for the user, expiring after `seconds`. */
  accessToken (userId: number, seconds = 300): string {
    const now = Math.floor(Date.now() / 1000)
    const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
    const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({
      token_type: 'access', exp: now + seconds, iat: now, jti: randomBytes(8).toString('hex'), user_id: userId
    })}`
    return `${body}.${createHmac('sha256', this.#secret).update(body).digest('base64url')}`
  }

  /** The user id of a valid, unexpired access token, or null: simplejwt's JWTAuthentication. */
  verify (token: string): number | null {
    const [header, payload, signature] = token.split('.')
    if (header === undefined || payload === undefined || signature === undefined) return null
    const expected = createHmac('sha256', this.#secret).update(`${header}.${payload}`).digest()
    const given = Buffer.from(signature, 'base64url')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { exp?: number, user_id?: number }
    if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return null
    return typeof claims.user_id === 'number' ? claims.user_id : null
  }
}

/** Django's parse_cookie: `a=1; b=2`, a repeated name keeps its last value. */
export function parseCookies (header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=')
    if (at === -1) continue
    out[part.slice(0, at).trim()] = part.slice(at + 1).trim()
  }
  return out
}

/** A new CSRF token, as Django sets it in the csrftoken cookie and renders it into forms. */
export function newCsrfToken (): string {
  return randomBytes(24).toString('hex')
}

/**
 * Django's CsrfViewMiddleware on a view that enforces it: null when the request passes, else the
 * reason Django gives. Label Studio runs plain HTTP behind a proxy by default, so Django believes it
 * is served on `http://<Host header>` and compares the browser's Origin with that.
 */
export function csrfFailure (headers: IncomingHttpHeaders, form: Record<string, string>, trusted: readonly string[] = []): string | null {
  const origin = headers.origin
  const served = `http://${headers.host ?? ''}`
  if (typeof origin === 'string' && origin !== served && !trusted.includes(origin)) {
    return `Origin checking failed - ${origin} does not match any trusted origins.`
  }
  const cookie = parseCookies(headers.cookie).csrftoken
  if (cookie === undefined) return 'CSRF cookie not set.'
  const token = form.csrfmiddlewaretoken ?? (typeof headers['x-csrftoken'] === 'string' ? headers['x-csrftoken'] : undefined)
  if (token === undefined || token !== cookie) return 'CSRF token missing or incorrect.'
  return null
}

export function csrfPage (reason: string): string {
  return `<!DOCTYPE html>\n<html><body><h1>Forbidden (403)</h1><p>CSRF verification failed. Request aborted.</p>\n<p>${reason}</p></body></html>\n`
}

export function loginPage (csrf: string, action: string): string {
  return '<!DOCTYPE html>\n<html><head><title>Label Studio</title></head><body>\n' +
    `<form method="post" action="${action}"><input type="hidden" name="csrfmiddlewaretoken" value="${csrf}">\n` +
    '<input name="email" type="email"><input name="password" type="password"><button>Log in</button></form>\n' +
    '</body></html>\n'
}
