import { DEFAULT_CSP_DIRECTIVES, type RawGatewayConfig } from './schema.js'
import type { ConfigProblems } from './load.js'
import type { GatewayConfig } from './types.js'
import { exactOrigin } from './origin.js'

// The options that speak to browsers: which other origins may call the gateway (cors) and the
// security headers of every response (headers). Checked here, after the schema, so that each
// problem is reported at its line with a message that says what to write instead.

type Raw = Required<RawGatewayConfig>

/** Browsers cap a preflight's lifetime (Chromium at 2 hours, Firefox at 24); more is never useful. */
const MAX_PREFLIGHT_AGE_S = 86_400

// CSP keywords that mean something only in single quotes; unquoted they name a host.
const QUOTED_KEYWORDS = new Set([
  'none', 'self', 'strict-dynamic', 'report-sample', 'inline-speculation-rules', 'unsafe-inline', 'unsafe-eval',
  'unsafe-hashes', 'wasm-unsafe-eval'
])
const QUOTED_PREFIXES = ['nonce-', 'sha256-', 'sha384-', 'sha512-']
const DIRECTIVE_NAME = /^[a-z]+(-[a-z]+)*$/

export function resolveCors (raw: Raw, c: ConfigProblems): GatewayConfig['cors'] {
  const cors = raw.cors
  const origins: string[] = []
  cors.origins.forEach((text, i) => {
    const found = exactOrigin(text)
    if ('error' in found) return c.add(['cors', 'origins', i], found.error)
    if (origins.includes(found.origin)) return c.add(['cors', 'origins', i], `${found.origin} is listed twice`)
    origins.push(found.origin)
  })
  const maxAgeMs = c.duration(['cors', 'max_age'], cors.max_age, 600_000)
  if (maxAgeMs % 1000 !== 0 || maxAgeMs > MAX_PREFLIGHT_AGE_S * 1000) {
    c.add(['cors', 'max_age'], 'must be whole seconds, at most 24h (browsers cap it lower)')
  }
  return {
    origins,
    credentials: cors.credentials,
    maxAgeSeconds: Math.floor(maxAgeMs / 1000),
    allowedHeaders: [...new Set(cors.allowed_headers.map((h) => h.toLowerCase()))],
    exposedHeaders: [...new Set(cors.exposed_headers.map((h) => h.toLowerCase()))]
  }
}

export function resolveHeaders (raw: Raw, c: ConfigProblems): GatewayConfig['headers'] {
  const { frame_options: frameOptions, referrer_policy: referrerPolicy } = raw.headers
  // The schema's defaults fill an absent csp section; the fallback only satisfies the type.
  const csp = raw.headers.csp ?? { report_only: false, directives: DEFAULT_CSP_DIRECTIVES }
  const at = ['headers', 'csp', 'directives']
  const directives: Record<string, string[]> = {}
  for (const [name, sources] of Object.entries(csp.directives)) {
    if (!DIRECTIVE_NAME.test(name)) {
      c.add([...at, name], 'must be a CSP directive name in lower case, such as script-src')
    } else if (name === 'frame-ancestors') {
      c.add([...at, name], 'is set from headers.frame_options; leave it out')
    }
    sources.forEach((source, i) => {
      if (QUOTED_KEYWORDS.has(source) || QUOTED_PREFIXES.some((p) => source.startsWith(p))) {
        c.add([...at, name, i], `must be quoted: "'${source}'"`)
      }
    })
    directives[name] = [...sources]
  }
  if (!('default-src' in directives)) c.add(at, 'must have default-src: it covers every directive left out')
  return { frameOptions, referrerPolicy, csp: { reportOnly: csp.report_only, directives } }
}
