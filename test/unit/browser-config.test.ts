import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config/load.js'
import { exactOrigin } from '../../src/config/origin.js'

// The cors and headers sections: origins normalised as browsers send them, and every mistake
// reported at its line.

function load (t: { testdir: (files: Record<string, string>) => string }, lines: string[]) {
  const dir = t.testdir({ 'c.crt': 'x', 'c.key': 'x' })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, ['tls: { cert: c.crt, key: c.key }', 'upstream: { url: "http://ls:8080" }', ...lines].join('\n') + '\n')
  try {
    return { config: loadConfig(file), message: '' }
  } catch (err) {
    return { config: null, message: (err as Error).message }
  }
}

t.test('origins are serialised as the Origin header carries them', async (t) => {
  const same: Array<[string, string]> = [
    ['https://app.example.com', 'https://app.example.com'],
    ['HTTPS://App.Example.COM', 'https://app.example.com'],
    ['https://app.example.com:443', 'https://app.example.com'],
    ['https://app.example.com/', 'https://app.example.com'],
    ['http://localhost:80', 'http://localhost'],
    ['http://localhost:3000', 'http://localhost:3000'],
    ['https://app.example.com:8443', 'https://app.example.com:8443'],
    ['http://127.0.0.1:5173', 'http://127.0.0.1:5173'],
    ['http://[::1]:8080', 'http://[::1]:8080'],
    ['https://bücher.example', 'https://xn--bcher-kva.example']
  ]
  for (const [text, origin] of same) t.same(exactOrigin(text), { origin }, text)
  for (const text of [
    'null', '*', 'https://*.example.com', 'https://app.example.com/path', 'https://app.example.com/?a=1',
    'https://app.example.com#x', 'https://user@app.example.com', 'app.example.com', 'ftp://app.example.com',
    'file:///etc/passwd', 'https://app.example.com\\evil', 'https://', ' https://app.example.com', 'https://a b.com'
  ]) {
    t.ok('error' in exactOrigin(text), `${JSON.stringify(text)} is refused`)
  }
})

t.test('defaults: no origins, the UI policy, SAMEORIGIN and strict-origin-when-cross-origin', async (t) => {
  const { config, message } = load(t, [])
  t.equal(message, '')
  t.same(config?.cors, {
    origins: [],
    credentials: false,
    maxAgeSeconds: 600,
    allowedHeaders: ['authorization', 'content-type'],
    exposedHeaders: ['x-request-id']
  })
  t.equal(config?.headers.frameOptions, 'sameorigin')
  t.equal(config?.headers.referrerPolicy, 'strict-origin-when-cross-origin')
  t.equal(config?.headers.csp.reportOnly, false)
  t.same(config?.headers.csp.directives['default-src'], ["'self'"])
  t.same(config?.headers.csp.directives['object-src'], ["'none'"])
})

t.test('a full cors section resolves', async (t) => {
  const { config, message } = load(t, [
    'cors: { origins: ["HTTPS://App.Example.com:443", "http://localhost:3000/"], credentials: true, max_age: 2h,',
    '  allowed_headers: [Authorization, X-Api-Key, authorization], exposed_headers: [] }'
  ])
  t.equal(message, '')
  t.same(config?.cors, {
    origins: ['https://app.example.com', 'http://localhost:3000'],
    credentials: true,
    maxAgeSeconds: 7200,
    allowedHeaders: ['authorization', 'x-api-key'],
    exposedHeaders: []
  })
})

t.test('bad origins, ages and header names are reported at their lines', async (t) => {
  const { message } = load(t, [
    'cors:',
    '  origins:',
    '    - "null"',
    '    - "*"',
    '    - https://app.example.com/api',
    '    - https://app.example.com',
    '    - HTTPS://APP.EXAMPLE.COM:443',
    '  max_age: 1500ms',
    '  allowed_headers: ["*"]',
    '  exposed_headers: [x_request_id]'
  ])
  t.match(message, /:5:\d+ \/cors\/origins\/0: must name one origin exactly.*"null" and wildcards are refused/)
  t.match(message, /:6:\d+ \/cors\/origins\/1: must name one origin exactly/)
  t.match(message, /:7:\d+ \/cors\/origins\/2: must be an origin, scheme:\/\/host\[:port\].*no path/)
  t.match(message, /:9:\d+ \/cors\/origins\/4: https:\/\/app\.example\.com is listed twice/)
  t.match(message, /:10:\d+ \/cors\/max_age: must be whole seconds, at most 24h/)
  t.match(message, /:11:\d+ \/cors\/allowed_headers\/0: must be a header name: letters, digits and dashes \(no wildcard\)/)
  t.match(message, /:12:\d+ \/cors\/exposed_headers\/0: must be a header name/)
  t.match(load(t, ['cors: { max_age: 25h }']).message, /\/cors\/max_age: must be whole seconds, at most 24h/)
  t.match(load(t, ['cors: { origins: https://app.example.com }']).message, /\/cors\/origins: must be array/)
})

t.test('CSP directives: replaced whole, checked for the mistakes helmet would only throw on', async (t) => {
  const ok = load(t, ['headers: { frame_options: deny, referrer_policy: no-referrer,',
    '  csp: { report_only: true, directives: { default-src: ["\'none\'"], upgrade-insecure-requests: [] } } }'])
  t.equal(ok.message, '')
  t.same(ok.config?.headers, {
    frameOptions: 'deny',
    referrerPolicy: 'no-referrer',
    csp: { reportOnly: true, directives: { 'default-src': ["'none'"], 'upgrade-insecure-requests': [] } }
  })
  const { message } = load(t, [
    'headers:',
    '  frame_options: allow',
    '  referrer_policy: unsafe-url',
    '  csp:',
    '    directives:',
    '      script-src: [self, "https://cdn.example.com; script-src *", sha256-abc]',
    '      frame-ancestors: ["*"]',
    '      Img_Src: ["\'self\'"]'
  ])
  t.match(message, /:4:\d+ \/headers\/frame_options: must be one of sameorigin, deny/)
  t.match(message, /:5:\d+ \/headers\/referrer_policy: must be one of strict-origin-when-cross-origin/)
  t.match(message, /:8:\d+ \/headers\/csp\/directives: must have default-src/)
  t.match(message, /:8:\d+ \/headers\/csp\/directives\/script-src\/0: must be quoted: "'self'"/)
  t.match(message, /:8:\d+ \/headers\/csp\/directives\/script-src\/1: must be one CSP source or keyword/)
  t.match(message, /:8:\d+ \/headers\/csp\/directives\/script-src\/2: must be quoted: "'sha256-abc'"/)
  t.match(message, /:9:\d+ \/headers\/csp\/directives\/frame-ancestors: is set from headers\.frame_options/)
  t.match(message, /:10:\d+ \/headers\/csp\/directives\/Img_Src: must be a CSP directive name in lower case/)
})
