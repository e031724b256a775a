import t from 'tap'
import { clientResponseHeaders, varyWithOrigin } from '../../src/proxy/headers.js'
import { helmetOptions, isMediaPath, mediaPolicy } from '../../src/headers/security.js'

// The response-header rules as pure functions: which paths are media, what of Label Studio's
// headers reaches the client, and the helmet options built from the configuration.

t.test('media paths: Label Studio\'s media URL, file downloads, local files and the storage resolvers', async (t) => {
  for (const path of [
    '/data/upload/1/page.html', '/data/upload/page.html', '/data/upload', '/data/avatars/a.svg', '/data/local-files/',
    '/data/local-files', '/data/export/x.json', '/data', '/storage-data/uploaded/', '/storage-data',
    '/tasks/1/resolve/', '/tasks/1/resolve', '/tasks/1/presign/', '/projects/7/resolve/', '/projects/7/presign',
    '/api/data/local-files/', '/x/data/local-files'
  ]) t.ok(isMediaPath(path), path)
  for (const path of [
    '/', '/api/projects/1/', '/database/', '/data-manager/', '/dataset/', '/storage-database/', '/api/tasks/1/',
    '/tasks/1/', '/tasks/1/resolved/', '/projects/1/data/', '/static/x.js', '/api/storages/s3/1/'
  ]) t.notOk(isMediaPath(path), path)
})

t.test('the media policy sandboxes and follows frame_options', async (t) => {
  t.equal(mediaPolicy('sameorigin'), "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'")
  t.match(mediaPolicy('deny'), /frame-ancestors 'none'$/)
})

t.test('Vary always names Origin, keeping what Label Studio named', async (t) => {
  t.equal(varyWithOrigin(undefined), 'Origin')
  t.equal(varyWithOrigin(''), 'Origin')
  t.equal(varyWithOrigin('Accept, Cookie'), 'Accept, Cookie, Origin')
  t.equal(varyWithOrigin(['Accept', 'Cookie']), 'Accept, Cookie, Origin')
  t.equal(varyWithOrigin('origin, Accept'), 'origin, Accept')
  t.equal(varyWithOrigin('*'), '*')
})

t.test('Label Studio\'s security and Access-Control-* headers never reach the client', async (t) => {
  const out = clientResponseHeaders({
    'content-type': 'application/json',
    'content-security-policy': 'default-src *; frame-ancestors *',
    'content-security-policy-report-only': "default-src 'self'",
    'x-frame-options': 'ALLOWALL',
    'x-content-type-options': 'sniff',
    'referrer-policy': 'unsafe-url',
    'strict-transport-security': 'max-age=0',
    'cross-origin-resource-policy': 'cross-origin',
    'cross-origin-opener-policy': 'unsafe-none',
    'x-powered-by': 'Django',
    'access-control-allow-origin': '*',
    'access-control-allow-credentials': 'true',
    'access-control-allow-headers': '*',
    'access-control-expose-headers': 'set-cookie',
    'access-control-max-age': '86400',
    vary: 'Accept, Cookie',
    'content-disposition': 'inline',
    etag: '"1"'
  }, 'req-1', { sessionCookie: 'sessionid', csrfCookie: 'csrftoken', sameSite: 'lax' })
  t.same(out, {
    'content-type': 'application/json',
    vary: 'Accept, Cookie, Origin',
    'content-disposition': 'inline',
    etag: '"1"',
    'x-request-id': 'req-1'
  })
})

t.test('helmet gets the configured policy, with frame-ancestors from frame_options', async (t) => {
  const options = helmetOptions({
    tls: { hstsMaxAge: 60 } as never,
    headers: {
      frameOptions: 'deny',
      referrerPolicy: 'same-origin',
      csp: { reportOnly: true, directives: { 'default-src': ["'self'"] } }
    }
  })
  t.same(options, {
    hsts: { maxAge: 60, includeSubDomains: true },
    contentSecurityPolicy: {
      useDefaults: false, reportOnly: true, directives: { 'default-src': ["'self'"], 'frame-ancestors': ["'none'"] }
    },
    crossOriginEmbedderPolicy: false,
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' }
  })
})
