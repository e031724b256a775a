import { createHmac, timingSafeEqual } from 'node:crypto'

// Signed links to one object of a storage, for clients that cannot send a credential (an <img>,
// an ML backend handing a URL on). A link is minted only after every check of a resolver request
// has passed, names the user it was minted for and the object, and expires; it is signed with the
// first key of a ring, and any key of the ring verifies it, so keys can be rotated.

export interface LinkClaims {
  /** The user the link was minted for. */
  user: string
  /** The names the user's binding may be stored under: each is checked when the link is used. */
  names: readonly string[]
  /** The project whose task references the object; null for a caller who reaches every project. */
  project: number | null
  /** The backend and the object's URI. */
  backend: string
  uri: string
  /** Seconds since the epoch. */
  expires: number
}

export interface LinkKey { id: string, secret: Buffer }

/** A key id, the claims (a URI of up to 2,048 characters, three bytes each at most), the signature. */
const TOKEN = /^([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{1,8000})\.([A-Za-z0-9_-]{43})$/

/** The longest link verified (and so minted): the router's longest path parameter. */
export const MAX_LINK_LENGTH = 8192

export function mintLink (claims: LinkClaims, key: LinkKey): string {
  const body = Buffer.from(JSON.stringify({
    u: claims.user, n: claims.names, p: claims.project, b: claims.backend, r: claims.uri, e: claims.expires
  })).toString('base64url')
  return `${key.id}.${body}.${mac(key, body)}`
}

function mac (key: LinkKey, body: string): string {
  return createHmac('sha256', key.secret).update(`labelgate-link.${key.id}.${body}`).digest('base64url')
}

/** The claims of a link that is well-formed, signed by a key of the ring and not expired; otherwise why not. */
export function verifyLink (
  token: string, keys: readonly LinkKey[], nowSeconds: number
): { claims: LinkClaims } | { problem: string } {
  const match = TOKEN.exec(token)
  if (match === null) return { problem: 'malformed' }
  const [, id, body, signature] = match as unknown as [string, string, string, string]
  const key = keys.find((k) => k.id === id)
  if (key === undefined) return { problem: 'unknown-key' }
  const expected = Buffer.from(mac(key, body))
  const given = Buffer.from(signature)
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { problem: 'bad-signature' }
  let value: { u?: unknown, n?: unknown, p?: unknown, b?: unknown, r?: unknown, e?: unknown } | null
  try {
    value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof value
  } catch {
    return { problem: 'malformed' }
  }
  const { u, n, p, b, r, e } = value ?? {}
  if (typeof u !== 'string' || typeof b !== 'string' || typeof r !== 'string' || typeof e !== 'number' ||
    !Array.isArray(n) || !n.every((name) => typeof name === 'string') ||
    !(p === null || (typeof p === 'number' && Number.isSafeInteger(p)))) {
    return { problem: 'malformed' }
  }
  if (!Number.isSafeInteger(e) || e <= nowSeconds) return { problem: 'expired' }
  return { claims: { user: u, names: n as string[], project: p, backend: b, uri: r, expires: e } }
}
