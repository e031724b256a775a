import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

// AES-256-GCM for the Label Studio tokens that gateway tokens carry. The token id is bound in as
// additional data, so a sealed value copied onto another token record does not open.

const VERSION = 'v1'

export function seal (key: Buffer, plaintext: string, boundTo: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(boundTo, 'utf8'))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`
}

/** Opens a sealed value; throws when the key, the binding or the bytes are wrong. */
export function unseal (key: Buffer, sealed: string, boundTo: string): string {
  const [version, data] = sealed.split('.')
  if (version !== VERSION || data === undefined) throw new Error('unknown sealed format')
  const raw = Buffer.from(data, 'base64url')
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
  decipher.setAAD(Buffer.from(boundTo, 'utf8'))
  decipher.setAuthTag(raw.subarray(12, 28))
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
}
