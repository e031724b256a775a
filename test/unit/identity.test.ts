import { randomBytes } from 'node:crypto'
import t from 'tap'
import { seal, unseal } from '../../src/identity/seal.js'
import { createToken, digestToken, tokenProblem, type Identity } from '../../src/identity/records.js'
import { readCredential } from '../../src/auth/credentials.js'
import { parseKey } from '../../src/config/secrets.js'

t.test('sealed upstream tokens open only with the same key and the same token id', async (t) => {
  const key = randomBytes(32)
  const sealed = seal(key, 'ls-token-value', 'tk_1')
  t.notMatch(sealed, 'ls-token-value')
  t.equal(unseal(key, sealed, 'tk_1'), 'ls-token-value')
  t.throws(() => unseal(randomBytes(32), sealed, 'tk_1'), 'another key')
  t.throws(() => unseal(key, sealed, 'tk_2'), 'moved to another token record')
  const bytes = Buffer.from(sealed.slice(3), 'base64url')
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1
  t.throws(() => unseal(key, 'v1.' + bytes.toString('base64url'), 'tk_1'), 'tampered')
  t.not(seal(key, 'x', 'tk_1'), seal(key, 'x', 'tk_1'), 'a fresh nonce each time')
})

t.test('tokens are random, prefixed, and stored only as a SHA-256 digest', async (t) => {
  const a = createToken()
  t.match(a, /^lg_[A-Za-z0-9_-]{43}$/)
  t.not(a, createToken())
  t.equal(digestToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
})

t.test('why a token does not authenticate', async (t) => {
  const base: Identity = {
    token: { id: 'tk', digest: 'd', user: 'u', kind: 'issued', createdAt: 0, expiresAt: null, revokedAt: null, last4: 'abcd', upstream: null },
    user: { user: 'u', role: 'annotator', projects: 'all', disabled: false, updatedAt: 0 }
  }
  t.equal(tokenProblem(base, 10), null)
  t.equal(tokenProblem(null, 10), 'unknown-token')
  t.equal(tokenProblem({ ...base, token: { ...base.token, expiresAt: 10 } }, 10), 'expired-token')
  t.equal(tokenProblem({ ...base, token: { ...base.token, revokedAt: 5 } }, 10), 'revoked-token')
  t.equal(tokenProblem({ ...base, user: { ...base.user!, disabled: true } }, 10), 'disabled-user')
})

t.test('credentials: Authorization decides, X-Api-Key otherwise', async (t) => {
  t.same(readCredential('Token abc', undefined), { credential: { value: 'abc', source: 'authorization' } })
  t.same(readCredential('bearer abc', 'other'), { credential: { value: 'abc', source: 'authorization' } })
  t.same(readCredential(undefined, ' key1 '), { credential: { value: 'key1', source: 'x-api-key' } })
  t.same(readCredential(undefined, undefined), { credential: null })
  for (const bad of ['Basic YTpi', 'Token', 'Token a b', 'Tokenabc', 'Token \u00e9']) t.ok('malformed' in readCredential(bad, undefined), bad)
  t.ok('malformed' in readCredential(undefined, ''))
})

t.test('encryption keys: 32 bytes as hex or base64, nothing else', async (t) => {
  const key = randomBytes(32)
  t.same(parseKey(key.toString('hex')), key)
  t.same(parseKey(key.toString('base64')), key)
  t.equal(parseKey(randomBytes(16).toString('hex')), null)
  t.equal(parseKey('not a key'), null)
})
