import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { TSchema } from '@sinclair/typebox'
import { loadConfig } from '../../src/config/load.js'
import { GatewayConfigSchema } from '../../src/config/schema.js'
import { REPO_ROOT } from '../support/tmp.js'

const EXAMPLE = join(REPO_ROOT, 'gateway.example.yaml')

/** Writes a configuration beside two placeholder certificate files and returns loadConfig's message. */
function problemsOf (t: { testdir: (files: Record<string, string>) => string }, lines: string[], env: NodeJS.ProcessEnv = {}): string {
  const dir = t.testdir({ 'c.crt': 'x', 'c.key': 'x' })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, lines.join('\n') + '\n')
  try {
    loadConfig(file, { env })
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

function optionNames (schema: TSchema, out = new Set<string>()): Set<string> {
  const s = schema as { properties?: Record<string, TSchema>, anyOf?: TSchema[] }
  for (const [name, inner] of Object.entries(s.properties ?? {})) {
    out.add(name)
    optionNames(inner, out)
  }
  for (const branch of s.anyOf ?? []) optionNames(branch, out)
  return out
}

t.test('filters.drop_fields adds to the built-in list and never replaces it', async (t) => {
  const dir = t.testdir({ 'c.crt': 'x', 'c.key': 'x' })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, 'tls: { cert: c.crt, key: c.key }\nupstream: { url: "http://ls:8080" }\nfilters: { drop_fields: [ssn] }\n')
  const config = loadConfig(file)
  t.ok(config.filters.dropFields.has('ssn'))
  t.ok(config.filters.dropFields.has('aws_session_token'))
  writeFileSync(file, 'tls: { cert: c.crt, key: c.key }\nupstream: { url: "http://ls:8080" }\nfilters: { drop_fields: ["*", "a b"] }\n')
  t.throws(() => loadConfig(file), /drop_fields\/0: must be a JSON key name/)
})

t.test('gateway.example.yaml loads as it is', async (t) => {
  const config = loadConfig(EXAMPLE)
  t.equal(config.server.port, 8443)
  t.equal(config.identity.store.kind, 'embedded')
  t.equal(config.upstream.headersTimeoutMs, 30_000)
  t.same(config.rateLimits, { enabled: true, windowMs: 60_000, max: 600, anonymousMax: 120, authEndpointsMax: 10 })
  t.ok(Object.isFrozen(config.server), 'the configuration is frozen')
})

t.test('gateway.example.yaml documents every option of the schema', async (t) => {
  const text = readFileSync(EXAMPLE, 'utf8')
  for (const name of optionNames(GatewayConfigSchema)) {
    t.match(text, new RegExp(`(^|[\\s#{,])${name}:`, 'm'), `${name} is documented`)
  }
})

t.test('every option set, Redis included, loads and resolves', async (t) => {
  const dir = t.testdir({ 'ca.crt': 'x', 'c.crt': 'x', 'c.key': 'x', 'server.crt': 'x', 'server.key': 'x', pw: 'secret\n' })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `
server: { host: 127.0.0.1, port: 9443, http_redirect_port: null, public_origin: https://labels.example.com,
  trusted_proxies: [10.0.0.0/8, "::1", 192.168.1.1], request_timeout: 30s, headers_timeout: 5s, keep_alive_timeout: 2s }
tls: { cert: server.crt, key: server.key, min_version: TLSv1.3, generate_dev_certificate: false, hsts_max_age: 60 }
upstream: { url: "https://ls.internal:8443/", timeouts: { connect: 1s, headers: 2s, body: 3s }, connections: 8, keep_alive_timeout: 1s, ca: ca.crt }
identity:
  redis: { url: "rediss://redis:6380", username: lg, password: { file: pw }, tls: { ca: ca.crt, cert: c.crt, key: c.key, servername: redis },
           key_prefix: "lg:", command_timeout: 500ms, connect_timeout: 1s }
  cache_ttl: 0s
  cache_size: 5
  encryption_key: { env: KEY }
  default_role: annotator
policies: { dir: pol }
rate_limits: { enabled: false, window: 10s, max: 50, anonymous_max: 20, auth_endpoints_max: 3 }
log: { level: debug }
`)
  const config = loadConfig(file, { env: { KEY: 'ab'.repeat(32) } })
  t.match(config, {
    server: { trustedProxies: ['10.0.0.0/8', '::1', '192.168.1.1'], headersTimeoutMs: 5000, publicOrigin: 'https://labels.example.com' },
    upstream: { url: 'https://ls.internal:8443', bodyTimeoutMs: 3000, caFile: join(dir, 'ca.crt') },
    identity: { store: { kind: 'redis', password: 'secret', keyPrefix: 'lg:', commandTimeoutMs: 500, tls: { servername: 'redis' } }, cacheTtlMs: 0, defaultRole: 'annotator' },
    policies: { dir: join(dir, 'pol') },
    rateLimits: { enabled: false, windowMs: 10_000, max: 50, anonymousMax: 20, authEndpointsMax: 3 }
  })
  t.equal(config.identity.encryptionKey?.length, 32)
})

t.test('secrets and choices are checked, each problem at its line', async (t) => {
  const message = problemsOf(t, [
    'tls: { cert: c.crt, key: c.key }',
    'upstream: { url: "http://ls:8080/api" }',
    'identity:',
    '  redis: { url: "redis://user:pw@redis:6379", password: { env: NOPE }, tls: { ca: ca.crt } }',
    '  embedded: { path: x }',
    '  encryption_key: { env: SHORT }',
    'server: { trusted_proxies: [not-an-ip], public_origin: "http://x", host: 999.1.1.1, port: 9000, http_redirect_port: 9000 }',
    'policies: { dir: p }',
    'log: { level: info }'
  ], { SHORT: 'abcd' })
  for (const re of [
    /:2:\d+ \/upstream\/url: must be an origin without path/,
    /:4:\d+ \/identity\/redis\/url: must not hold credentials/,
    /:4:\d+ \/identity\/redis\/password: environment variable NOPE is not set/,
    /:4:\d+ \/identity\/redis\/tls: TLS options need a rediss:\/\/ URL/,
    /:5:\d+ \/identity\/embedded: choose one store/,
    /:6:\d+ \/identity\/encryption_key: the key must be 32 bytes/,
    /:7:\d+ \/server\/trusted_proxies\/0: must be an IP address or CIDR range/,
    /:7:\d+ \/server\/public_origin: must be an https origin/,
    /:7:\d+ \/server\/host: must be an IP address/,
    /:7:\d+ \/server\/http_redirect_port: must differ from server.port/
  ]) t.match(message, re)
})

t.test('timeouts of zero are refused, and one bad section does not hide the others', async (t) => {
  const message = problemsOf(t, [
    'tls: { cert: c.crt, key: c.key, min_version: 7 }',
    'upstream: { url: "ftp://ls", timeouts: { connect: 0ms } }',
    'server: { port: eighty }',
    'identity: { default_role: 5, token_lifetime: forever }',
    'rate_limits: { window: 0s, max: 0 }'
  ])
  t.match(message, /:1:\d+ \/tls\/min_version: must be one of TLSv1\.2, TLSv1\.3/)
  t.match(message, /:2:\d+ \/upstream\/url: must use http:\/\/ or https:\/\//)
  t.match(message, /:2:\d+ \/upstream\/timeouts\/connect: must be longer than 0/)
  t.match(message, /:3:\d+ \/server\/port: must be integer/)
  t.match(message, /:4:\d+ \/identity\/token_lifetime: must be a duration such as 90d, or never/)
  t.match(message, /:5:\d+ \/rate_limits\/window: must be longer than 0/)
  t.match(message, /:5:\d+ \/rate_limits\/max: must be >= 1/)
})

t.test('sessions, signup and server limits are checked at their lines', async (t) => {
  const message = problemsOf(t, [
    'tls: { cert: c.crt, key: c.key }',
    'upstream: { url: "http://ls:8080" }',
    'sessions: { trusted_origins: ["https://*.example.com", "null", "http://plain.example", "https://ok.example/path"] }',
    'sessions2: {}',
    'signup: { mode: sometimes, password_min_length: 20, password_max_length: 10 }',
    'server: { allowed_hosts: ["user@host", "host:99999"] }'
  ])
  t.match(message, /:3:\d+ \/sessions\/trusted_origins\/0: must name one origin exactly/)
  t.match(message, /:3:\d+ \/sessions\/trusted_origins\/1: must name one origin exactly/)
  t.match(message, /:3:\d+ \/sessions\/trusted_origins\/2: must use https:\/\//)
  t.match(message, /:3:\d+ \/sessions\/trusted_origins\/3: must be an origin/)
  t.match(message, /:4:\d+ \/sessions2: unknown option "sessions2"/)
  t.match(message, /:5:\d+ \/signup\/mode: must be one of closed, invite, open/)
  t.match(message, /:6:\d+ \/server\/allowed_hosts\/0: must be a host name or address/)
  t.match(message, /:6:\d+ \/server\/allowed_hosts\/1: must be a host name or address/)
})
