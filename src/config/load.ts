import { parseHostHeader, type HostHeader } from '../edge/host.js'
import { resolveSessions } from './sessions.js'
import { resolveSignup } from './signup.js'
import { resolveStorage } from './storage.js'
import { readFileSync, accessSync, constants } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { isIP } from 'node:net'
import { LG_ERR_CONFIG_INVALID } from '../errors.js'
import { DEFAULT_DROP_FIELDS, GatewayConfigSchema, type RawGatewayConfig } from './schema.js'
import {
  parseYamlSource, problemAt, formatProblems, type Problem, type PathSegment, type YamlSource
} from './source-map.js'
import { compileSchema, validateAgainst } from './validate.js'
import { parseDuration } from './units.js'
import { readSecret, parseKey } from './secrets.js'
import { resolveCors, resolveHeaders } from './browser.js'
import type { GatewayConfig, RedisStoreConfig } from './types.js'

const validateConfig = compileSchema(GatewayConfigSchema)

export class ConfigProblems {
  readonly problems: Problem[] = []
  constructor (readonly source: YamlSource, readonly baseDir: string) {}

  add (path: readonly PathSegment[], message: string): void {
    this.problems.push(problemAt(this.source, path, message))
  }

  /** A file the configuration names: resolved against the configuration's folder and checked readable. */
  file (path: readonly PathSegment[], name: string | undefined): string | null {
    if (name === undefined) return null
    const full = resolve(this.baseDir, name)
    try {
      accessSync(full, constants.R_OK)
    } catch {
      this.add(path, `file ${full} does not exist or cannot be read`)
    }
    return full
  }

  duration (path: readonly PathSegment[], text: string | undefined, fallback: number): number {
    if (text === undefined) return fallback
    const ms = parseDuration(text)
    if (ms === null) this.add(path, 'must be a duration such as 250ms, 5s or 90d')
    return ms ?? fallback
  }

  /** A duration that bounds a wait: zero would mean "wait for ever" to the libraries it reaches. */
  timeout (path: readonly PathSegment[], text: string | undefined, fallback: number): number {
    const ms = this.duration(path, text, fallback)
    if (ms === 0) this.add(path, 'must be longer than 0')
    return ms
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv
  /** Leave identity.encryption_key unread when its secret is missing, for commands that never use it. */
  lazySecrets?: boolean
  /** Leave storage credentials unread when missing, for commands that never reach a storage. */
  lazyStorageSecrets?: boolean
}

/** Reads, validates and resolves gateway.yaml; throws LG_ERR_CONFIG_INVALID listing every problem. */
export function loadConfig (file: string, options: LoadOptions = {}): GatewayConfig {
  const path = resolve(file)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const problem = { file: path, line: 1, col: 1, path: '', message: `cannot read the file (${errnoCode(err)})` }
    throw Object.assign(new LG_ERR_CONFIG_INVALID(formatProblems([problem])), { problems: [problem] })
  }
  const { source, problems } = parseYamlSource(path, text)
  // Duplicate keys leave a usable document, so the rest of it is still checked and every problem
  // is reported in one run; a syntax error leaves nothing reliable to check.
  const usable = source.doc.errors.every((e) => e.code === 'DUPLICATE_KEY')
  const raw: unknown = usable ? (source.doc.toJS() ?? {}) : {}
  if (usable) problems.push(...validateAgainst(validateConfig, source, raw))
  const checks = new ConfigProblems(source, dirname(path))
  let config: GatewayConfig | null = null
  if (usable && isObject(raw)) {
    const lazy = options.lazySecrets === true
    const resolveOptions = {
      env: options.env ?? process.env,
      lazySecrets: lazy,
      lazyStorageSecrets: lazy || options.lazyStorageSecrets === true
    }
    config = resolveConfig(raw as Required<RawGatewayConfig>, checks, resolveOptions)
  }
  const flagged = new Set(problems.map((p) => p.path))
  const semantic = checks.problems.filter((p) => !flagged.has(p.path))
  const all = [...problems, ...semantic].sort((a, b) => a.line - b.line || a.col - b.col)
  if (all.length > 0 || config === null) {
    throw Object.assign(new LG_ERR_CONFIG_INVALID(formatProblems(all)), { problems: all })
  }
  return deepFreeze(config)
}

interface ResolveOptions { env: NodeJS.ProcessEnv, lazySecrets: boolean, lazyStorageSecrets: boolean }

/**
 * Resolves each section on its own: a value of the wrong type (already reported by the schema)
 * can trip one section's checks, and the other sections' problems must still be reported.
 */
function resolveConfig (
  raw: Required<RawGatewayConfig>, c: ConfigProblems, options: ResolveOptions
): GatewayConfig | null {
  const sections = {
    server: guarded(() => resolveServer(raw, c)),
    tls: guarded(() => resolveTls(raw, c)),
    upstream: guarded(() => resolveUpstream(raw, c)),
    identity: guarded(() => resolveIdentity(raw, c, options)),
    policies: guarded(() => ({
      dir: resolve(c.baseDir, raw.policies.dir),
      projectCacheTtlMs: c.duration(['policies', 'project_cache_ttl'], raw.policies.project_cache_ttl, 600_000)
    })),
    filters: guarded(() => ({
      requestMaxBytes: raw.filters.request_max_bytes,
      responseMaxBytes: raw.filters.response_max_bytes,
      // The built-in list always applies: a configuration can add keys, never take one away.
      dropFields: new Set([...DEFAULT_DROP_FIELDS, ...raw.filters.drop_fields])
    })),
    sessions: guarded(() => resolveSessions(raw, raw.upstream.url, c)),
    signup: guarded(() => resolveSignup(raw, c)),
    rateLimits: guarded(() => ({
      enabled: raw.rate_limits.enabled,
      windowMs: c.timeout(['rate_limits', 'window'], raw.rate_limits.window, 60_000),
      max: raw.rate_limits.max,
      anonymousMax: raw.rate_limits.anonymous_max,
      authEndpointsMax: raw.rate_limits.auth_endpoints_max
    })),
    cors: guarded(() => resolveCors(raw, c)),
    headers: guarded(() => resolveHeaders(raw, c)),
    storage: guarded(() => resolveStorage(raw, c, options)),
    log: guarded(() => ({ level: raw.log.level }))
  }
  const {
    server, tls, upstream, identity, policies, filters, sessions, signup, rateLimits, cors, headers, storage, log
  } = sections
  if (!server || !tls || !upstream || !identity || !policies || !filters || !sessions || !signup || !rateLimits ||
    !cors || !headers || !storage || !log) return null
  return {
    file: c.source.file,
    server,
    tls,
    upstream,
    identity,
    policies,
    filters,
    sessions,
    signup,
    rateLimits,
    cors,
    headers,
    storage,
    log
  }
}

function guarded<T> (resolveSection: () => T): T | null {
  try {
    return resolveSection()
  } catch {
    return null
  }
}

function resolveServer (raw: Required<RawGatewayConfig>, c: ConfigProblems): GatewayConfig['server'] {
  const server = raw.server
  if (isIP(server.host) === 0 && server.host !== 'localhost') {
    c.add(['server', 'host'], 'must be an IP address to bind to, such as 0.0.0.0, 127.0.0.1 or ::')
  }
  if (server.http_redirect_port != null && server.http_redirect_port === server.port) {
    c.add(['server', 'http_redirect_port'], 'must differ from server.port')
  }
  return {
    host: server.host,
    port: server.port,
    httpRedirectPort: server.http_redirect_port ?? null,
    publicOrigin: checkOrigin(c, server.public_origin),
    trustedProxies: checkProxies(c, server.trusted_proxies),
    requestTimeoutMs: c.timeout(['server', 'request_timeout'], server.request_timeout, 60_000),
    headersTimeoutMs: c.timeout(['server', 'headers_timeout'], server.headers_timeout, 10_000),
    keepAliveTimeoutMs: c.timeout(['server', 'keep_alive_timeout'], server.keep_alive_timeout, 5_000),
    idleTimeoutMs: c.timeout(['server', 'idle_timeout'], server.idle_timeout, 30_000),
    allowedHosts: checkHosts(c, server.allowed_hosts, server.public_origin),
    maxBodyBytes: server.max_body_bytes
  }
}

function resolveTls (raw: Required<RawGatewayConfig>, c: ConfigProblems): GatewayConfig['tls'] {
  const tls = raw.tls
  const certFile = resolve(c.baseDir, tls.cert)
  const keyFile = resolve(c.baseDir, tls.key)
  const missing = [certFile, keyFile].filter((f) => !readable(f))
  // A development certificate is made at startup only when both files are absent; one without
  // the other is a broken installation, never something to paper over.
  if (!(tls.generate_dev_certificate && missing.length === 2)) {
    c.file(['tls', 'cert'], tls.cert)
    c.file(['tls', 'key'], tls.key)
  }
  return {
    certFile,
    keyFile,
    minVersion: tls.min_version,
    generateDevCertificate: tls.generate_dev_certificate,
    hstsMaxAge: tls.hsts_max_age
  }
}

function resolveUpstream (raw: Required<RawGatewayConfig>, c: ConfigProblems): GatewayConfig['upstream'] {
  const up = raw.upstream
  const timeouts: Partial<Record<'connect' | 'headers' | 'body', string>> = up.timeouts ?? {}
  return {
    url: checkUpstreamUrl(c, up.url),
    connectTimeoutMs: c.timeout(['upstream', 'timeouts', 'connect'], timeouts.connect, 5_000),
    headersTimeoutMs: c.timeout(['upstream', 'timeouts', 'headers'], timeouts.headers, 30_000),
    bodyTimeoutMs: c.timeout(['upstream', 'timeouts', 'body'], timeouts.body, 60_000),
    keepAliveTimeoutMs: c.duration(['upstream', 'keep_alive_timeout'], up.keep_alive_timeout, 4_000),
    connections: up.connections,
    caFile: c.file(['upstream', 'ca'], up.ca)
  }
}

type Identity = GatewayConfig['identity']

function resolveIdentity (raw: Required<RawGatewayConfig>, c: ConfigProblems, options: ResolveOptions): Identity {
  const { env } = options
  const id = raw.identity
  if (id.redis && id.embedded) c.add(['identity', 'embedded'], 'choose one store: "redis" or "embedded", not both')
  let encryptionKey: Buffer | null = null
  if (id.encryption_key) {
    const secret = readSecret(id.encryption_key, c.baseDir, env)
    // Commands that never seal or open a token (listing, revoking) run without the key.
    if ('error' in secret) {
      if (!options.lazySecrets) c.add(['identity', 'encryption_key'], secret.error)
    } else {
      encryptionKey = parseKey(secret.value)
      if (!encryptionKey) {
        c.add(['identity', 'encryption_key'], 'the key must be 32 bytes, written as 64 hex digits or base64')
      }
    }
  }
  return {
    store: id.redis
      ? resolveRedis(id.redis, c, env)
      : { kind: 'embedded', path: resolve(c.baseDir, id.embedded?.path ?? 'data/identity') },
    cacheTtlMs: c.duration(['identity', 'cache_ttl'], id.cache_ttl, 5_000),
    tokenLifetimeMs: id.token_lifetime === 'never'
      ? null
      : c.timeout(['identity', 'token_lifetime'], id.token_lifetime, 90 * 86_400_000),
    cacheSize: id.cache_size,
    encryptionKey,
    defaultRole: id.default_role
  }
}

type RawRedis = NonNullable<NonNullable<RawGatewayConfig['identity']>['redis']>

function resolveRedis (redis: RawRedis, c: ConfigProblems, env: NodeJS.ProcessEnv): RedisStoreConfig {
  const at = ['identity', 'redis']
  let url: URL | null = null
  try {
    url = new URL(redis.url)
  } catch {
    c.add([...at, 'url'], 'must be a URL such as redis://127.0.0.1:6379 or rediss://redis.internal:6380')
  }
  if (url && url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    c.add([...at, 'url'], 'must use redis:// or rediss://')
  }
  if (url && (url.username || url.password)) {
    c.add([...at, 'url'], 'must not hold credentials; use identity.redis.username and identity.redis.password')
  }
  let password: string | null = null
  if (redis.password) {
    const secret = readSecret(redis.password, c.baseDir, env)
    if ('error' in secret) c.add([...at, 'password'], secret.error)
    else password = secret.value
  }
  const tls = redis.tls
  if (tls && url?.protocol === 'redis:') c.add([...at, 'tls'], 'TLS options need a rediss:// URL')
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
    c.add([...at, 'tls'], 'a client certificate needs both cert and key')
  }
  return {
    kind: 'redis',
    url: redis.url,
    username: redis.username ?? null,
    password,
    tls: tls || url?.protocol === 'rediss:'
      ? {
          ca: c.file([...at, 'tls', 'ca'], tls?.ca),
          cert: c.file([...at, 'tls', 'cert'], tls?.cert),
          key: c.file([...at, 'tls', 'key'], tls?.key),
          servername: tls?.servername ?? null
        }
      : null,
    keyPrefix: redis.key_prefix,
    commandTimeoutMs: c.timeout([...at, 'command_timeout'], redis.command_timeout, 1_000),
    connectTimeoutMs: c.timeout([...at, 'connect_timeout'], redis.connect_timeout, 2_000)
  }
}

function checkUpstreamUrl (c: ConfigProblems, text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    c.add(['upstream', 'url'], 'must be a URL such as http://127.0.0.1:8080')
    return text
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') c.add(['upstream', 'url'], 'must use http:// or https://')
  else if (url.username || url.password) c.add(['upstream', 'url'], 'must not hold credentials')
  else if (url.pathname !== '/' || url.search || url.hash) {
    c.add(['upstream', 'url'], 'must be an origin without path, query or fragment, such as http://label-studio:8080')
  }
  return url.origin
}

/** The Host values to answer: the list, else the public origin's host, else none (any host). */
function checkHosts (c: ConfigProblems, entries: string[], publicOrigin: string | undefined): HostHeader[] {
  const hosts = entries.map((entry, i) => {
    const host = parseHostHeader(entry)
    if (host === null) c.add(['server', 'allowed_hosts', i], 'must be a host name or address, with an optional :port')
    return host
  }).filter((h): h is HostHeader => h !== null)
  if (hosts.length > 0 || publicOrigin === undefined) return hosts
  try {
    const own = parseHostHeader(new URL(publicOrigin).host)
    return own === null ? [] : [own]
  } catch {
    return []
  }
}

function checkOrigin (c: ConfigProblems, text: string | undefined): string | null {
  if (text === undefined) return null
  try {
    const url = new URL(text)
    if (url.protocol === 'https:' && url.origin === text.replace(/\/$/, '')) return url.origin
  } catch {}
  c.add(['server', 'public_origin'], 'must be an https origin such as https://labels.example.com')
  return null
}

function checkProxies (c: ConfigProblems, entries: string[]): string[] {
  entries.forEach((entry, i) => {
    const [address, bits, extra] = entry.split('/')
    const family = isIP(address ?? '')
    const max = family === 6 ? 128 : 32
    const okBits = bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= max)
    if (family === 0 || !okBits || extra !== undefined) {
      c.add(['server', 'trusted_proxies', i], 'must be an IP address or CIDR range such as 10.0.0.0/8')
    }
  })
  return entries
}

/** A problem at an option of a configuration file that has already loaded, for checks made later. */
export function problemInFile (file: string, path: PathSegment[], message: string): Problem {
  const { source } = parseYamlSource(file, readFileSync(file, 'utf8'))
  return problemAt(source, path, message)
}

export function errnoCode (err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error'
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function readable (file: string): boolean {
  try {
    accessSync(file, constants.R_OK)
    return true
  } catch {
    return false
  }
}

function deepFreeze<T> (value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
