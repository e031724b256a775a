// The configuration after validation and resolution: durations in milliseconds, paths absolute,
// secrets read. Deep-frozen by the loader; nothing on the request path parses YAML again.

export interface RedisStoreConfig {
  kind: 'redis'
  url: string
  username: string | null
  password: string | null
  tls: { ca: string | null, cert: string | null, key: string | null, servername: string | null } | null
  keyPrefix: string
  commandTimeoutMs: number
  connectTimeoutMs: number
}

export interface EmbeddedStoreConfig {
  kind: 'embedded'
  path: string
}

interface BackendCommon {
  name: string
  projects: 'all' | readonly number[]
  signedLinks: boolean
}

export interface BucketBackend extends BackendCommon {
  type: 's3' | 'gcs'
  buckets: readonly string[]
  region: string
  /** The service URL without a trailing slash; null: AWS's regional endpoint. */
  endpoint: string | null
  pathStyle: boolean
  accessKeyId: string
  secretAccessKey: string
  sessionToken: string | null
}

export interface AzureBackend extends BackendCommon {
  type: 'azure'
  account: string
  containers: readonly string[]
  /** The blob service URL without a trailing slash, e.g. https://acct.blob.core.windows.net. */
  endpoint: string
  accountKey: Buffer | null
  /** A SAS query string without its leading "?". */
  sasToken: string | null
}

export interface LocalBackend extends BackendCommon {
  type: 'local'
  /** An absolute directory inside storage.local_files_root. */
  path: string
}

export type StorageBackend = BucketBackend | AzureBackend | LocalBackend

export interface GatewayConfig {
  file: string
  server: {
    host: string
    port: number
    httpRedirectPort: number | null
    publicOrigin: string | null
    trustedProxies: string[]
    requestTimeoutMs: number
    headersTimeoutMs: number
    keepAliveTimeoutMs: number
    idleTimeoutMs: number
    /** Host values answered; empty: any. Names are lower case. */
    allowedHosts: ReadonlyArray<{ hostname: string, port: number | null }>
    maxBodyBytes: number
  }
  tls: {
    certFile: string
    keyFile: string
    minVersion: 'TLSv1.2' | 'TLSv1.3'
    generateDevCertificate: boolean
    hstsMaxAge: number
  }
  upstream: {
    url: string
    connectTimeoutMs: number
    headersTimeoutMs: number
    bodyTimeoutMs: number
    keepAliveTimeoutMs: number
    connections: number
    caFile: string | null
  }
  identity: {
    store: RedisStoreConfig | EmbeddedStoreConfig
    cacheTtlMs: number
    /** Lifetime of a new token when `token create` or `register` is given no --expires; null: none. */
    tokenLifetimeMs: number | null
    cacheSize: number
    encryptionKey: Buffer | null
    defaultRole: string | null
  }
  policies: { dir: string, projectCacheTtlMs: number }
  filters: { requestMaxBytes: number, responseMaxBytes: number, dropFields: ReadonlySet<string> }
  sessions: {
    cookieName: string
    csrfCookieName: string
    cacheTtlMs: number
    /** Origins, besides the public one, whose cookie-authenticated writes are accepted. */
    trustedOrigins: readonly string[]
    sameSite: 'lax' | 'strict' | 'none'
    /** The Origin sent to Label Studio on writes whose origin the gateway has checked. */
    upstreamOrigin: string
  }
  signup: { mode: 'closed' | 'invite' | 'open', passwordMinLength: number, passwordMaxLength: number }
  rateLimits: {
    enabled: boolean
    windowMs: number
    /** Per authenticated user. */
    max: number
    /** Per client address, for requests without a valid credential. */
    anonymousMax: number
    /** Per user, or address when anonymous, on login, signup and token endpoints. */
    authEndpointsMax: number
  }
  cors: {
    /** Serialised origins (lower-case host, default port left out), compared with Origin as they are. */
    origins: string[]
    credentials: boolean
    maxAgeSeconds: number
    /** Lower case. */
    allowedHeaders: string[]
    exposedHeaders: string[]
  }
  headers: {
    frameOptions: 'sameorigin' | 'deny'
    referrerPolicy: 'strict-origin-when-cross-origin' | 'strict-origin' | 'same-origin' | 'no-referrer'
    csp: { reportOnly: boolean, directives: Record<string, string[]> }
  }
  storage: {
    backends: readonly StorageBackend[]
    localFilesRoot: string | null
    uploadsRoot: string | null
    referenceCacheTtlMs: number
    connectTimeoutMs: number
    headersTimeoutMs: number
    timeoutMs: number
    linkTtlMs: number
    /** The first key signs new links; every key verifies. */
    linkKeys: ReadonlyArray<{ id: string, secret: Buffer }>
  }
  log: { level: string }
}
