import { createHash, randomBytes } from 'node:crypto'

// The identity records. No secret is kept in the clear: a token is stored only as its SHA-256
// digest, and a Label Studio token it carries is sealed with AES-256-GCM (see seal.ts).

export interface TokenRecord {
  id: string
  /** Hex SHA-256 of the token: the only form in which a token is stored or looked up. */
  digest: string
  user: string
  /** `issued`: made by `token create`. `registered`: a Label Studio token, forwarded as it is. */
  kind: 'issued' | 'registered'
  createdAt: number
  expiresAt: number | null
  revokedAt: number | null
  /** The token's last four characters, so that an operator can tell tokens apart. */
  last4: string
  /** The user's Label Studio token, sealed; sent upstream in place of this one. */
  upstream: string | null
}

export interface UserRecord {
  user: string
  role: string
  projects: 'all' | number[]
  disabled: boolean
  updatedAt: number
}

export interface Identity {
  token: TokenRecord
  user: UserRecord | null
}

export function digestToken (token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

export const GATEWAY_TOKEN_PREFIX = 'lg_'

/** A new gateway token: 256 random bits, prefixed so that secret scanners can recognise it. */
export function createToken (): string {
  return GATEWAY_TOKEN_PREFIX + randomBytes(32).toString('base64url')
}

export function createTokenId (): string {
  return 'tk_' + randomBytes(8).toString('hex')
}

/** Why a token does not authenticate, or null when it does. Only the log ever sees the reason. */
export function tokenProblem (identity: Identity | null, now: number): string | null {
  if (!identity) return 'unknown-token'
  if (identity.token.revokedAt !== null) return 'revoked-token'
  if (identity.token.expiresAt !== null && identity.token.expiresAt <= now) return 'expired-token'
  if (identity.user?.disabled) return 'disabled-user'
  return null
}
