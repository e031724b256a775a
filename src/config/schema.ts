import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { SessionsSchema } from './sessions.js'
import { SignupSchema } from './signup.js'

// The schema of gateway.yaml. It is the single source of truth: Ajv validates against it and the
// TypeScript type is derived from it. Every object refuses unknown keys, and defaults apply only to
// absent keys. gateway.example.yaml documents each option in the same order.

const strict = { additionalProperties: false } as const

/** A span of time: a whole number with a unit, such as `250ms`, `5s`, `10m`, `12h` or `90d`. */
const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$'
const KEY_PREFIX_PATTERN = '^[A-Za-z0-9:_.-]+$'
const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$'
const FIELD_NAME_PATTERN = '^[A-Za-z0-9_$@:-]+$'
const HEADER_NAME_PATTERN = '^[A-Za-z0-9-]+$'
const CSP_SOURCE_PATTERN = '^[^\\s;,]+$'
const BUCKET_PATTERN = '^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$'
const CONTAINER_PATTERN = '^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$'

/** What a value that fails a pattern should have looked like, for error messages. */
export const PATTERN_HINTS: Record<string, string> = {
  [DURATION_PATTERN]: 'must be a duration such as 250ms, 5s or 90d',
  [KEY_PREFIX_PATTERN]: 'must contain only letters, digits and : _ . -',
  [ENV_NAME_PATTERN]: 'must be an environment variable name',
  [FIELD_NAME_PATTERN]: 'must be a JSON key name (letters, digits, _ $ @ : -)',
  [HEADER_NAME_PATTERN]: 'must be a header name: letters, digits and dashes (no wildcard)',
  [CSP_SOURCE_PATTERN]: 'must be one CSP source or keyword, without spaces, ";" or ","',
  [BUCKET_PATTERN]: 'must be a bucket name: lower-case letters, digits, ".", "-" and "_"',
  [CONTAINER_PATTERN]: 'must be a container name: 3 to 63 lower-case letters, digits and single dashes'
}
export const Duration = Type.String({ pattern: DURATION_PATTERN, description: 'a duration such as 250ms, 5s or 90d' })

function duration (def: string, description: string) {
  return Type.String({
    pattern: DURATION_PATTERN, default: def, description: `${description} (a duration such as 250ms, 5s or 90d)`
  })
}

/** A secret is never written in the YAML: it is read from an environment variable or a file. */
export const SecretRef = Type.Union([
  Type.Object({ env: Type.String({ pattern: ENV_NAME_PATTERN }) }, strict),
  Type.Object({ file: Type.String({ minLength: 1 }) }, strict)
], { description: 'a secret: {env: NAME} or {file: PATH}' })

const Port = Type.Integer({ minimum: 1, maximum: 65535 })

/** A section that may be left out: absent, it takes the defaults of its options. */
function section<T extends TSchema> (schema: T) {
  return Type.Optional(Type.Unsafe<Static<T>>({ ...schema, default: {} }))
}

const Server = Type.Object({
  host: Type.String({ default: '0.0.0.0', description: 'address the HTTPS port binds to' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443, description: 'the public HTTPS port' }),
  http_redirect_port: Type.Optional(Type.Union([Port, Type.Null()], {
    description: 'a plain-HTTP port that only redirects to HTTPS; absent or null: none'
  })),
  public_origin: Type.Optional(Type.String({ description: 'the origin clients use, e.g. https://labels.example.com' })),
  trusted_proxies: Type.Array(Type.String(), {
    default: [],
    description: 'addresses or CIDR ranges whose X-Forwarded-* and X-Request-Id headers are believed'
  }),
  request_timeout: duration('60s', 'longest a client may take to send a whole request'),
  headers_timeout: duration('10s', 'longest a client may take to send the request headers'),
  keep_alive_timeout: duration('5s', 'how long an idle client connection is kept open'),
  idle_timeout: duration('30s', 'longest a connection may stay silent while a request is sent or answered'),
  allowed_hosts: Type.Array(Type.String(), {
    default: [],
    description: 'Host values the gateway answers (name or name:port); empty: the host of public_origin, or any'
  }),
  max_body_bytes: Type.Integer({
    minimum: 1, default: 268435456, description: 'largest request body of any kind, streamed ones included; larger: 413'
  })
}, strict)

const Tls = Type.Object({
  cert: Type.String({ minLength: 1, description: 'PEM certificate chain file' }),
  key: Type.String({ minLength: 1, description: 'PEM private key file' }),
  min_version: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { default: 'TLSv1.2' }),
  generate_dev_certificate: Type.Boolean({
    default: false,
    description: 'make a development CA and certificate at cert/key when both files are missing'
  }),
  hsts_max_age: Type.Integer({ minimum: 0, default: 31536000 })
}, strict)

const UpstreamTimeouts = Type.Object({
  connect: duration('5s', 'longest wait for a connection to Label Studio'),
  headers: duration('30s', 'longest wait for the response headers'),
  body: duration('60s', 'longest silence while the response body streams')
}, strict)

const Upstream = Type.Object({
  url: Type.String({ minLength: 1, description: 'Label Studio base URL, http or https, no path' }),
  timeouts: section(UpstreamTimeouts),
  connections: Type.Integer({ minimum: 1, maximum: 4096, default: 128 }),
  keep_alive_timeout: duration('4s', 'how long an idle upstream connection is kept'),
  ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA bundle to trust for an https upstream' }))
}, strict)

const RedisTls = Type.Object({
  ca: Type.Optional(Type.String({ minLength: 1 })),
  cert: Type.Optional(Type.String({ minLength: 1 })),
  key: Type.Optional(Type.String({ minLength: 1 })),
  servername: Type.Optional(Type.String({ minLength: 1 }))
}, strict)

const Redis = Type.Object({
  url: Type.String({ minLength: 1, description: 'redis:// or rediss:// URL, without credentials' }),
  username: Type.Optional(Type.String({ minLength: 1 })),
  password: Type.Optional(SecretRef),
  tls: Type.Optional(RedisTls),
  key_prefix: Type.String({ pattern: KEY_PREFIX_PATTERN, default: 'labelgate:' }),
  command_timeout: duration('1s', 'longest wait for one Redis command before the store counts as down'),
  connect_timeout: duration('2s', 'longest wait for a Redis connection')
}, strict)

const Identity = Type.Object({
  redis: Type.Optional(Redis),
  embedded: Type.Optional(Type.Object({
    path: Type.String({ minLength: 1, description: 'directory of the embedded database' })
  }, strict)),
  cache_ttl: duration('5s', 'how long a replica keeps a token lookup in memory (revocations drop it at once)'),
  cache_size: Type.Integer({ minimum: 0, default: 10000 }),
  token_lifetime: Type.Union([Type.Literal('never'), Type.String({ pattern: DURATION_PATTERN })], {
    default: '90d',
    description: 'a duration such as 90d, or never'
  }),
  encryption_key: Type.Optional(SecretRef),
  default_role: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null })
}, strict)

const Policies = Type.Object({
  dir: Type.String({ minLength: 1, default: 'policies' }),
  project_cache_ttl: duration('10m', 'how long the project of a task, annotation or other object is remembered')
}, strict)

/**
 * Keys that no role ever sees in a filtered response, at any depth: storage credentials that some
 * Label Studio versions return, webhook headers (they carry the receiver's secrets), the basic-auth
 * password for task media, invite and API tokens, and tracebacks (CVE-2025-25297's exfiltration channel).
 */
export const DEFAULT_DROP_FIELDS = [
  'aws_access_key_id', 'aws_secret_access_key', 'aws_session_token', 'aws_sse_kms_key_id',
  'google_application_credentials', 'account_key', 'sas_token', 'password', 'client_secret',
  'basic_auth_pass', 'task_data_password', 'headers', 'token', 'invite_url', 'traceback'
]

const Filters = Type.Object({
  request_max_bytes: Type.Integer({
    minimum: 1, default: 1048576, description: 'largest JSON body parsed for a field check'
  }),
  response_max_bytes: Type.Integer({
    minimum: 1, default: 16777216, description: 'largest response filtered; larger: 502'
  }),
  drop_fields: Type.Array(Type.String({ pattern: FIELD_NAME_PATTERN }), {
    uniqueItems: true, default: [], description: 'keys dropped in addition to the built-in list'
  })
}, strict)

const RateLimits = Type.Object({
  enabled: Type.Boolean({ default: true, description: 'count requests and answer 429 over the limits' }),
  window: duration('1m', 'the span each count covers; a count starts with its first request'),
  max: Type.Integer({ minimum: 1, default: 600, description: 'requests per window of one authenticated user' }),
  anonymous_max: Type.Integer({
    minimum: 1,
    default: 120,
    description: 'requests per window of one client address without a valid credential (none, or one that failed)'
  }),
  auth_endpoints_max: Type.Integer({
    minimum: 1,
    default: 10,
    description: 'requests per window to login, signup and token endpoints, per user (or address when anonymous)'
  })
}, strict)

const Cors = Type.Object({
  origins: Type.Array(Type.String({ minLength: 1 }), {
    default: [],
    description: 'exact origins (scheme://host[:port]) whose pages may call the gateway from a browser; empty: none'
  }),
  credentials: Type.Boolean({
    default: false,
    description: 'answer listed origins with Access-Control-Allow-Credentials: true'
  }),
  max_age: duration('10m', 'how long a browser may reuse a preflight answer'),
  allowed_headers: Type.Array(Type.String({ pattern: HEADER_NAME_PATTERN }), {
    uniqueItems: true, default: ['authorization', 'content-type'], description: 'request headers a page may send'
  }),
  exposed_headers: Type.Array(Type.String({ pattern: HEADER_NAME_PATTERN }), {
    uniqueItems: true, default: ['x-request-id'], description: 'response headers a page may read'
  })
}, strict)

/**
 * The Content-Security-Policy of everything but media: Label Studio's own policy (its settings
 * CSP_*, which it sends report-only) without its analytics and error-reporting hosts, with
 * plugins, <base> and form targets kept to the gateway's origin. frame-ancestors comes from
 * headers.frame_options.
 */
export const DEFAULT_CSP_DIRECTIVES: Record<string, string[]> = {
  'default-src': ["'self'"],
  'script-src': ["'self'", "'unsafe-inline'", 'blob:'],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:', 'blob:'],
  'media-src': ["'self'", 'blob:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'self'"],
  'form-action': ["'self'"]
}

const Csp = Type.Object({
  report_only: Type.Boolean({
    default: false, description: 'send the policy as Content-Security-Policy-Report-Only: reported, not enforced'
  }),
  directives: Type.Record(Type.String(), Type.Array(Type.String({ pattern: CSP_SOURCE_PATTERN })), {
    default: DEFAULT_CSP_DIRECTIVES,
    description: 'the whole policy: directive name to its sources; given, it replaces the default'
  })
}, strict)

const Headers = Type.Object({
  frame_options: Type.Union([Type.Literal('sameorigin'), Type.Literal('deny')], {
    default: 'sameorigin', description: 'X-Frame-Options, and CSP frame-ancestors \'self\' or \'none\''
  }),
  referrer_policy: Type.Union([
    Type.Literal('strict-origin-when-cross-origin'), Type.Literal('strict-origin'), Type.Literal('same-origin'),
    Type.Literal('no-referrer')
  ], { default: 'strict-origin-when-cross-origin' }),
  csp: section(Csp)
}, strict)

// Where task media lives (src/config/storage.ts resolves it): buckets of S3 and stores that speak
// its API, GCS through its XML API, Azure Blob containers and local folders, each for some projects.

const BackendProjects = Type.Union([
  Type.Literal('all'),
  Type.Array(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), { minItems: 1 })
], { description: 'the Label Studio projects whose tasks may use this backend: a list of ids, or "all"' })

const Backend = Type.Object({
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'a name for logs and metrics' }),
  type: Type.Union([Type.Literal('s3'), Type.Literal('gcs'), Type.Literal('azure'), Type.Literal('local')]),
  projects: BackendProjects,
  buckets: Type.Optional(Type.Array(Type.String({ pattern: BUCKET_PATTERN }), {
    minItems: 1, description: 's3 and gcs'
  })),
  containers: Type.Optional(Type.Array(Type.String({ pattern: CONTAINER_PATTERN }), {
    minItems: 1, description: 'azure'
  })),
  endpoint: Type.Optional(Type.String({ description: 'the service URL; default: the provider\'s public one' })),
  region: Type.Optional(Type.String({ minLength: 1, description: 's3: the signing region; gcs: auto' })),
  path_style: Type.Optional(Type.Boolean({ description: 's3: bucket in the path instead of the host name' })),
  access_key_id: Type.Optional(SecretRef),
  secret_access_key: Type.Optional(SecretRef),
  session_token: Type.Optional(SecretRef),
  account: Type.Optional(Type.String({ pattern: '^[a-z0-9]{3,24}$', description: 'azure: the storage account' })),
  account_key: Type.Optional(SecretRef),
  sas_token: Type.Optional(SecretRef),
  path: Type.Optional(Type.String({ minLength: 1, description: 'local: a directory under local_files_root' })),
  signed_links: Type.Boolean({ default: false, description: 'may mint short-lived links to its objects' })
}, strict)

const LinkKey = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$' }),
  secret: SecretRef
}, strict)

const Storage = Type.Object({
  backends: Type.Array(Backend, { default: [] }),
  local_files_root: Type.Optional(Type.String({
    minLength: 1, description: 'Label Studio\'s LOCAL_FILES_DOCUMENT_ROOT, as mounted for the gateway'
  })),
  uploads_root: Type.Optional(Type.String({
    minLength: 1, description: 'the upload folder of Label Studio\'s MEDIA_ROOT, as mounted for the gateway'
  })),
  reference_cache_ttl: Type.String({ ...Duration, default: '30s' }),
  connect_timeout: Type.String({ ...Duration, default: '5s' }),
  headers_timeout: Type.String({ ...Duration, default: '30s' }),
  timeout: Type.String({ ...Duration, default: '10m' }),
  link_ttl: Type.String({ ...Duration, default: '5m' }),
  link_keys: Type.Array(LinkKey, { default: [] })
}, strict)

const Log = Type.Object({
  level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), {
    default: 'info'
  })
}, strict)

export const GatewayConfigSchema = Type.Object({
  server: section(Server),
  tls: Tls,
  upstream: Upstream,
  identity: section(Identity),
  policies: section(Policies),
  filters: section(Filters),
  sessions: section(SessionsSchema),
  signup: section(SignupSchema),
  rate_limits: section(RateLimits),
  cors: section(Cors),
  headers: section(Headers),
  storage: section(Storage),
  log: section(Log)
}, strict)

export type RawGatewayConfig = Static<typeof GatewayConfigSchema>
export type SecretRefValue = Static<typeof SecretRef>
