import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { ConfigProblems } from './load.js'
import type { RawGatewayConfig, SecretRefValue } from './schema.js'
import { readSecret } from './secrets.js'
import type { GatewayConfig, StorageBackend } from './types.js'

// Where task media lives and how the gateway reaches it: buckets of S3 (or a store that speaks its
// API), GCS through its XML API with HMAC keys, Azure Blob containers, and local directories. Each
// backend names the Label Studio projects it serves. Credentials come from the environment or from
// files, never from the YAML.

type RawStorage = NonNullable<RawGatewayConfig['storage']>
type RawBackend = RawStorage['backends'][number]
interface Options { env: NodeJS.ProcessEnv, lazyStorageSecrets: boolean }

/** Longest life of a signed link: it is a bearer capability that no revocation reaches. */
const MAX_LINK_TTL_MS = 3_600_000

export function resolveStorage (
  raw: { storage: RawStorage }, c: ConfigProblems, options: Options
): GatewayConfig['storage'] {
  const s = raw.storage
  const at = ['storage']
  const names = new Set<string>()
  const served = new Map<string, string>()
  const localRoot = directory(c, [...at, 'local_files_root'], s.local_files_root)
  const backends = s.backends.flatMap((b, i): StorageBackend[] => {
    const path = [...at, 'backends', i]
    if (names.has(b.name)) c.add([...path, 'name'], `another backend is already named "${b.name}"`)
    names.add(b.name)
    for (const place of places(b)) {
      const other = served.get(place)
      if (other === b.name) c.add(path, `${place} is listed twice`)
      else if (other !== undefined) c.add(path, `${place} is already served by backend "${other}"`)
      served.set(place, b.name)
    }
    const backend = resolveBackend(b, path, c, options, localRoot)
    return backend === null ? [] : [backend]
  })
  const linkTtlMs = c.timeout([...at, 'link_ttl'], s.link_ttl, 300_000)
  if (linkTtlMs > MAX_LINK_TTL_MS) c.add([...at, 'link_ttl'], 'must be at most 1h')
  const linkKeys = s.link_keys.flatMap((k, i) => {
    const secret = secretOf(c, [...at, 'link_keys', i, 'secret'], k.secret, options)
    if (secret !== null && Buffer.byteLength(secret) < 32) {
      c.add([...at, 'link_keys', i, 'secret'], 'a link key must be at least 32 bytes long')
    }
    return secret === null ? [] : [{ id: k.id, secret: Buffer.from(secret) }]
  })
  if (new Set(s.link_keys.map((k) => k.id)).size !== s.link_keys.length) {
    c.add([...at, 'link_keys'], 'two link keys have the same id')
  }
  const linking = s.backends.findIndex((b) => b.signed_links)
  if (linking >= 0 && s.link_keys.length === 0) {
    c.add([...at, 'backends', linking, 'signed_links'], 'signed links need at least one key in storage.link_keys')
  }
  return {
    backends,
    localFilesRoot: localRoot,
    uploadsRoot: directory(c, [...at, 'uploads_root'], s.uploads_root),
    referenceCacheTtlMs: c.duration([...at, 'reference_cache_ttl'], s.reference_cache_ttl, 30_000),
    connectTimeoutMs: c.timeout([...at, 'connect_timeout'], s.connect_timeout, 5_000),
    headersTimeoutMs: c.timeout([...at, 'headers_timeout'], s.headers_timeout, 30_000),
    timeoutMs: c.timeout([...at, 'timeout'], s.timeout, 600_000),
    linkTtlMs,
    linkKeys
  }
}

/** What a backend claims to serve, so that no object has two backends. */
function places (b: RawBackend): string[] {
  const scheme = b.type === 's3' ? 's3' : b.type === 'gcs' ? 'gs' : 'azure-blob'
  if (b.type === 'local') return []
  return (b.type === 'azure' ? b.containers ?? [] : b.buckets ?? []).map((name) => `${scheme}://${name}`)
}

function resolveBackend (
  b: RawBackend, path: Array<string | number>, c: ConfigProblems, options: Options, localRoot: string | null
): StorageBackend | null {
  const common = { name: b.name, projects: b.projects, signedLinks: b.signed_links }
  const refuse = (keys: Array<keyof RawBackend>): void => {
    for (const key of keys) if (b[key] !== undefined) c.add([...path, key], `does not apply to type ${b.type}`)
  }
  const need = <K extends keyof RawBackend>(key: K): NonNullable<RawBackend[K]> | null => {
    const value = b[key]
    if (value === undefined) c.add(path, `type ${b.type} needs ${key}`)
    return value ?? null
  }
  const secret = (key: 'access_key_id' | 'secret_access_key' | 'session_token' | 'account_key' | 'sas_token') => {
    const ref = b[key]
    return ref === undefined ? null : secretOf(c, [...path, key], ref, options)
  }
  if (b.type === 's3' || b.type === 'gcs') {
    refuse(['containers', 'account', 'account_key', 'sas_token', 'path'])
    if (b.type === 'gcs') refuse(['session_token'])
    const buckets = need('buckets')
    need('access_key_id')
    need('secret_access_key')
    const region = b.region ?? (b.type === 'gcs' ? 'auto' : null)
    if (region === null) c.add(path, 'type s3 needs region')
    const fallback = b.type === 'gcs' ? 'https://storage.googleapis.com' : null
    const endpoint = endpointOf(c, [...path, 'endpoint'], b.endpoint ?? fallback)
    return {
      ...common,
      type: b.type,
      buckets: buckets ?? [],
      region: region ?? '',
      endpoint,
      // GCS's XML API takes the bucket in the path; so do most stores that speak S3's API.
      pathStyle: b.path_style ?? (b.type === 'gcs' || endpoint !== null),
      accessKeyId: secret('access_key_id') ?? '',
      secretAccessKey: secret('secret_access_key') ?? '',
      sessionToken: secret('session_token')
    }
  }
  if (b.type === 'azure') {
    refuse(['buckets', 'region', 'path_style', 'access_key_id', 'secret_access_key', 'session_token', 'path'])
    const account = need('account')
    const containers = need('containers')
    if ((b.account_key === undefined) === (b.sas_token === undefined)) {
      c.add(path, 'type azure needs one of account_key and sas_token')
    }
    const key = secret('account_key')
    const accountKey = key === null ? null : Buffer.from(key, 'base64')
    // Azure's account keys are 64 bytes, shown in base64.
    if (key !== null && (accountKey?.length !== 64 || !/^[A-Za-z0-9+/]+=*$/.test(key))) {
      c.add([...path, 'account_key'], 'must be the account key as Azure shows it (64 bytes in base64)')
    }
    const fallback = `https://${account ?? 'account'}.blob.core.windows.net`
    const endpoint = endpointOf(c, [...path, 'endpoint'], b.endpoint ?? fallback)
    return {
      ...common,
      type: 'azure',
      account: account ?? '',
      containers: containers ?? [],
      endpoint: endpoint ?? '',
      accountKey,
      sasToken: secret('sas_token')?.replace(/^\?/, '') ?? null
    }
  }
  refuse(['buckets', 'containers', 'endpoint', 'region', 'path_style', 'access_key_id', 'secret_access_key',
    'session_token', 'account', 'account_key', 'sas_token'])
  if (b.signed_links) c.add([...path, 'signed_links'], 'local files are served by path; links apply to buckets')
  const dir = directory(c, [...path, 'path'], need('path') ?? undefined)
  if (localRoot === null) c.add(path, 'type local needs storage.local_files_root')
  if (dir !== null && localRoot !== null && !isInside(localRoot, dir)) {
    c.add([...path, 'path'], `must be inside local_files_root (${localRoot})`)
  }
  return { ...common, type: 'local', path: dir ?? '' }
}

function isInside (root: string, dir: string): boolean {
  return dir === root || dir.startsWith(root.endsWith('/') ? root : root + '/')
}

function secretOf (
  c: ConfigProblems, path: Array<string | number>, ref: SecretRefValue, options: Options
): string | null {
  const secret = readSecret(ref, c.baseDir, options.env)
  if ('value' in secret) return secret.value
  // Commands that never reach a storage (tokens, users, policy tests) run without its credentials.
  if (!options.lazyStorageSecrets) c.add(path, secret.error)
  return null
}

function endpointOf (c: ConfigProblems, path: Array<string | number>, text: string | null): string | null {
  if (text === null) return null
  let url: URL
  try {
    url = new URL(text)
  } catch {
    c.add(path, 'must be an http or https URL')
    return null
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '' ||
    url.username !== '' || url.password !== '') {
    c.add(path, 'must be an http or https URL without query, fragment or credentials')
    return null
  }
  return url.href.replace(/\/+$/, '')
}

/** An existing directory, resolved against the configuration's folder. */
function directory (c: ConfigProblems, path: Array<string | number>, name: string | undefined): string | null {
  if (name === undefined) return null
  const full = resolve(c.baseDir, name)
  try {
    if (!statSync(full).isDirectory()) c.add(path, `${full} is not a directory`)
  } catch {
    c.add(path, `directory ${full} does not exist or cannot be read`)
  }
  return full
}
