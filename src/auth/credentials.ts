// Reads the caller's credential from the request headers. Pure: no Fastify, no store.
//
// Label Studio clients send `Authorization: Token <key>`; JWT-style clients send `Bearer`; the
// Label Studio SDK sends `X-Api-Key`. When a proxy sits in front of Label Studio the SDK sends the
// proxy's token in Authorization and its own key in X-Api-Key: Authorization then decides, and the
// X-Api-Key is never trusted or forwarded.

export interface Credential {
  value: string
  source: 'authorization' | 'x-api-key'
}

export type CredentialResult =
  | { credential: Credential | null }
  | { malformed: string }

const AUTHORIZATION = /^(token|bearer) +([\x21-\x7e]{1,1024})$/i
const API_KEY = /^[\x21-\x7e]{1,1024}$/

export function readCredential (authorization: string | undefined, apiKey: string | undefined): CredentialResult {
  if (authorization !== undefined) {
    const match = AUTHORIZATION.exec(authorization.trim())
    if (!match) return { malformed: 'authorization-scheme' }
    return { credential: { value: match[2] as string, source: 'authorization' } }
  }
  if (apiKey !== undefined) {
    const value = apiKey.trim()
    if (!API_KEY.test(value)) return { malformed: 'x-api-key-format' }
    return { credential: { value, source: 'x-api-key' } }
  }
  return { credential: null }
}
