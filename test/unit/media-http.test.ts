import { execFileSync } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import { byteRange, explicitSuffix, httpDate, inlineType, preconditions, storageRequestHeaders, suffixLength } from '../../src/media/http.js'
import { MAX_LINK_LENGTH, mintLink, verifyLink, type LinkClaims, type LinkKey } from '../../src/media/links.js'
import { isInside, resolveInside } from '../../src/media/local.js'
import { encodeFileUri } from '../../src/media/uri.js'
import { tempDir } from '../support/tmp.js'

// The HTTP side of media, pure: what of a client's request reaches a storage, which types are shown
// inline, signed links, and local paths kept inside their root.

t.test('Range: one well-formed range is passed on; anything else is left out', async (t) => {
  const passed = ['bytes=0-0', 'bytes=0-499', 'bytes=500-', 'bytes=-500', 'bytes=7-7', 'bytes=0-999999999999999',
    'bytes=-0']
  for (const range of passed) t.same(storageRequestHeaders({ range }), { range }, range)
  const dropped = [
    'bytes=0-1,3-4', 'bytes=0-1, 3-4', 'bytes=5-2', 'bytes=-', 'bytes=', 'bytes=a-b', 'bytes=1-2-3', 'bytes=--1',
    'bytes=0-1 ', ' bytes=0-1', 'bytes = 0-1', 'Bytes=0-1', 'items=0-1', 'bytes=0x1-2', 'bytes=1.5-2',
    'bytes=0-1\r\nx-amz-acl: public-read', 'bytes=0-1234567890123456', 'bytes=-1234567890123456', ''
  ]
  for (const range of dropped) t.same(storageRequestHeaders({ range }), {}, JSON.stringify(range))
  t.same(storageRequestHeaders({ range: 'bytes=0-1', 'if-range': '"etag"' }), {}, 'a range with If-Range')
  t.same(storageRequestHeaders({ range: 'bytes=0-1', 'if-range': 'Wed, 21 Oct 2015 07:28:00 GMT' }), {}, 'If-Range with a date')
  t.same(storageRequestHeaders({ range: ['bytes=0-1', 'bytes=2-3'] } as unknown as IncomingHttpHeaders), {}, 'two Range headers')
})

t.test('conditionals are not passed to a storage: the gateway evaluates them itself', async (t) => {
  const conditionals: IncomingHttpHeaders[] = [
    { 'if-none-match': '"abc"' }, { 'if-none-match': 'W/"a", "b"' }, { 'if-none-match': '*' }, { 'if-match': '"a"' },
    { 'if-modified-since': 'Wed, 21 Oct 2015 07:28:00 GMT' }, { 'if-unmodified-since': 'Wed, 21 Oct 2015 07:28:00 GMT' }
  ]
  for (const headers of conditionals) t.same(storageRequestHeaders(headers), {}, JSON.stringify(headers))
  t.same(storageRequestHeaders({
    authorization: 'Token abc',
    cookie: 'sessionid=1',
    host: 'gateway.example',
    'x-amz-security-token': 'x',
    'x-ms-version': '2009-09-19',
    'accept-encoding': 'gzip',
    'x-forwarded-for': '1.2.3.4',
    range: 'bytes=0-1',
    'if-none-match': '"a"'
  }), { range: 'bytes=0-1' }, 'a range, and nothing else of the client\'s request')
})

t.test('httpDate reads HTTP-dates in their three forms, and nothing else', async (t) => {
  const dates: Array<[string, string]> = [
    ['Wed, 21 Oct 2015 07:28:00 GMT', '2015-10-21T07:28:00.000Z'],
    ['Sunday, 06-Nov-94 08:49:37 GMT', '1994-11-06T08:49:37.000Z'],
    ['Sun Nov  6 08:49:37 1994', '1994-11-06T08:49:37.000Z']
  ]
  for (const [value, iso] of dates) t.equal(new Date(httpDate(value) ?? NaN).toISOString(), iso, value)
  // RFC 9110, 13.1.3: a value that is not a valid HTTP-date is ignored. JavaScript reads many such
  // values as dates ("1" as 2001); acting on them would turn a request for the object into a 304.
  const refused = ['', 'yesterday', 'not a date', '1', '0', '2020', '12', 'yesterday 1', '2015-10-21', '2015-10-21T07:28:00Z',
    '1445412480000', 'Tue, 32 Oct 2015 07:28:00 GMT', `Wed, 21 Oct 2015 07:28:00 GMT${' '.repeat(60)}x`]
  for (const value of refused) t.equal(httpDate(value), null, JSON.stringify(value))
  // asctime's form names no zone: it is GMT, whatever the gateway's own zone is.
  const zone = process.env.TZ
  process.env.TZ = 'Asia/Tokyo'
  t.teardown(() => {
    if (zone === undefined) delete process.env.TZ
    else process.env.TZ = zone
  })
  t.equal(new Date(httpDate('Sun Nov  6 08:49:37 1994') ?? NaN).toISOString(), '1994-11-06T08:49:37.000Z', 'asctime, in another time zone')
})

t.test('suffixLength reads only a suffix range', async (t) => {
  const cases: Array<[string | undefined, number | null]> = [
    ['bytes=-500', 500], ['bytes=-1', 1], ['bytes=-0', 0], ['bytes=-999999999999999', 999_999_999_999_999],
    ['bytes=0-499', null], ['bytes=500-', null], ['bytes=-', null], ['bytes=-1,-2', null], ['bytes=--5', null],
    ['bytes=-5 ', null], [undefined, null], ['', null]
  ]
  for (const [range, n] of cases) t.equal(suffixLength(range), n, String(range))
})

t.test('explicitSuffix is the last bytes that exist, or null when none do', async (t) => {
  const cases: Array<[number, number, string | null]> = [
    [500, 10_000, 'bytes=9500-9999'],
    [1, 1, 'bytes=0-0'],
    [1, 10, 'bytes=9-9'],
    [10, 10, 'bytes=0-9'],
    [500, 100, 'bytes=0-99'],
    [0, 100, null],
    [5, 0, null],
    [0, 0, null]
  ]
  for (const [suffix, length, range] of cases) {
    t.equal(explicitSuffix(suffix, length), range, `last ${suffix} of ${length}`)
    if (range !== null) {
      const [, first, last] = /^bytes=([0-9]+)-([0-9]+)$/.exec(range) ?? []
      t.equal(Number(last) - Number(first) + 1, Math.min(suffix, length), 'as many bytes as asked, or all there are')
      t.equal(Number(last), length - 1, 'ending at the last byte')
    }
  }
})

t.test('inlineType: media and plain data inline; pages, scripts and markup as attachments', async (t) => {
  const inline = [
    'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp', 'image/tiff',
    'audio/mpeg', 'audio/wav', 'audio/ogg', 'video/mp4', 'video/webm', 'video/quicktime',
    'application/pdf', 'application/json', 'text/plain', 'text/csv', 'text/tab-separated-values',
    'IMAGE/PNG', 'Image/Jpeg', 'text/plain; charset=utf-8', 'TEXT/PLAIN;charset="UTF-8"', 'video/mp4; codecs="avc1.42E01E"',
    'audio/mpeg ; x=1', 'application/json;charset=utf-8'
  ]
  for (const type of inline) t.ok(inlineType(type), type)
  const attachment = [
    'image/svg+xml', 'IMAGE/SVG+XML', 'image/svg+xml; charset=utf-8', 'text/html', 'TEXT/HTML', 'text/html; charset=utf-8',
    'application/xhtml+xml', 'text/xml', 'application/xml', 'application/rss+xml', 'application/atom+xml',
    'text/javascript', 'application/javascript', 'application/x-javascript', 'application/ecmascript', 'text/ecmascript',
    'application/wasm', 'text/css', 'multipart/x-mixed-replace', 'application/x-shockwave-flash', 'text/vtt',
    'application/vnd.ms-htmlhelp', 'message/rfc822', 'image/png-but-not', 'imagex/png', 'text/plainx', '', 'png',
    ' text/html', 'text/html;image/png', 'audio/', 'video/mp4/x'
  ]
  for (const type of attachment) t.notOk(inlineType(type), JSON.stringify(type))
})

// ---- signed links

const OLD: LinkKey = { id: 'k2024', secret: Buffer.from('o'.repeat(32)) }
const NEW: LinkKey = { id: 'k2025', secret: Buffer.from('n'.repeat(32)) }
const NOW = 1_700_000_000
const CLAIMS: LinkClaims = {
  user: 'annotator@example.com', names: ['annotator@example.com', '7'], project: 3, backend: 'images', uri: 's3://labelling/images/cat 1.png', expires: NOW + 300
}

/** A token signed as links are, with any body: for bodies mintLink would never write. */
function signedToken (key: LinkKey, body: string): string {
  return `${key.id}.${body}.${createHmac('sha256', key.secret).update(`labelgate-link.${key.id}.${body}`).digest('base64url')}`
}
const bodyOf = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

t.test('a minted link verifies to its claims', async (t) => {
  const token = mintLink(CLAIMS, NEW)
  t.match(token, /^k2025\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/)
  t.same(verifyLink(token, [NEW], NOW), { claims: CLAIMS })
  t.same(verifyLink(token, [NEW], NOW + 299), { claims: CLAIMS }, 'a second before it expires')
  for (const claims of [
    { ...CLAIMS, user: 'ü 日本 "quoted" \\ user' },
    { ...CLAIMS, uri: 'azure-blob://c1/😀/ü.png' },
    { ...CLAIMS, uri: `s3://bucket/${'k'.repeat(1024)}` }
  ]) t.same(verifyLink(mintLink(claims, NEW), [NEW], NOW), { claims })
  t.same(verifyLink(signedToken(NEW, bodyOf({ u: 'a', n: ['a'], p: null, b: 'b', r: 'c', e: NOW + 1, extra: 1 })), [NEW], NOW),
    { claims: { user: 'a', names: ['a'], project: null, backend: 'b', uri: 'c', expires: NOW + 1 } }, 'unknown fields are ignored')
})

t.test('a link for an S3 or GCS object of the longest key fits the route\'s path parameter', async (t) => {
  // S3 and GCS keys are at most 1,024 bytes and Azure blob names 1,024 characters; the gateway's
  // router takes path parameters of up to 8,192 characters (maxParamLength in src/app.ts).
  for (const uri of [`s3://${'b'.repeat(63)}/${'é'.repeat(512)}`, `azure-blob://${'c'.repeat(63)}/${'日'.repeat(1024)}`]) {
    const token = mintLink({ ...CLAIMS, uri }, NEW)
    t.ok(token.length <= MAX_LINK_LENGTH, `${token.length} characters`)
    t.same(verifyLink(token, [NEW], NOW), { claims: { ...CLAIMS, uri } })
  }
})

t.test('keys rotate: any key of the ring verifies, an unknown key id does not', async (t) => {
  const old = mintLink(CLAIMS, OLD)
  t.same(verifyLink(old, [NEW, OLD], NOW), { claims: CLAIMS }, 'an old key still in the ring')
  t.same(verifyLink(old, [NEW], NOW), { problem: 'unknown-key' }, 'an old key removed from the ring')
  t.same(verifyLink(old, [], NOW), { problem: 'unknown-key' }, 'an empty ring')
  t.same(verifyLink(mintLink(CLAIMS, NEW), [NEW, OLD], NOW), { claims: CLAIMS })
  // The same id with another secret (another deployment, or a key replaced in place).
  t.same(verifyLink(old, [{ id: OLD.id, secret: Buffer.from('x'.repeat(32)) }], NOW), { problem: 'bad-signature' })
  // A link's key id is signed: moving its body and signature under another id of the ring fails.
  const [, body, signature] = old.split('.')
  t.same(verifyLink(`${NEW.id}.${body}.${signature}`, [NEW, OLD], NOW), { problem: 'bad-signature' })
})

t.test('a tampered link is refused', async (t) => {
  const token = mintLink(CLAIMS, NEW)
  const [id = '', body = '', signature = ''] = token.split('.')
  const other = mintLink({ ...CLAIMS, uri: 's3://labelling/images/secret.png' }, NEW)
  const flip = (text: string, at: number): string => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1)
  const tampered: Array<[string, string]> = [
    [`${id}.${bodyOf({ u: CLAIMS.user, b: CLAIMS.backend, r: 's3://labelling/images/secret.png', e: CLAIMS.expires })}.${signature}`,
      'another object'],
    [`${id}.${bodyOf({ u: 'admin', b: CLAIMS.backend, r: CLAIMS.uri, e: CLAIMS.expires })}.${signature}`, 'another user'],
    [`${id}.${bodyOf({ u: CLAIMS.user, b: CLAIMS.backend, r: CLAIMS.uri, e: CLAIMS.expires + 3600 })}.${signature}`, 'a later expiry'],
    [`${id}.${flip(body, 5)}.${signature}`, 'one character of the body'],
    [`${id}.${body}A.${signature}`, 'a character added to the body'],
    [`${id}.${flip(body, body.length - 1)}.${signature}`, 'the body\'s last character'],
    [`${id}.${body}.${flip(signature, 0)}`, 'one character of the signature'],
    [`${id}.${body}.${flip(signature, 42)}`, 'the signature\'s last character'],
    [`${id}.${body}.${other.split('.')[2] ?? ''}`, 'another link\'s signature']
  ]
  for (const [value, why] of tampered) t.same(verifyLink(value, [NEW], NOW), { problem: 'bad-signature' }, why)
})

t.test('an expired link is refused', async (t) => {
  const token = mintLink(CLAIMS, NEW)
  t.same(verifyLink(token, [NEW], CLAIMS.expires), { problem: 'expired' }, 'at its expiry')
  t.same(verifyLink(token, [NEW], CLAIMS.expires + 1), { problem: 'expired' })
  t.same(verifyLink(mintLink({ ...CLAIMS, expires: 0 }, NEW), [NEW], NOW), { problem: 'expired' })
  t.same(verifyLink(mintLink({ ...CLAIMS, expires: -1 }, NEW), [NEW], NOW), { problem: 'expired' })
  for (const e of [NOW + 0.5, 2 ** 53, 1e300]) {
    t.same(verifyLink(signedToken(NEW, bodyOf({ u: 'a', n: [], p: null, b: 'b', r: 'c', e })), [NEW], NOW), { problem: 'expired' }, `e: ${e}`)
  }
})

t.test('a malformed link is refused', async (t) => {
  const token = mintLink(CLAIMS, NEW)
  const [id = '', body = '', signature = ''] = token.split('.')
  const malformed: Array<[string, string]> = [
    ['', 'empty'],
    [`${id}.${body}`, 'two parts'],
    [`${id}.${body}.${signature}.x`, 'four parts'],
    [`${id}..${signature}`, 'an empty body'],
    [`.${body}.${signature}`, 'an empty key id'],
    [`${id}.${body}.${signature.slice(0, 42)}`, 'a short signature'],
    [`${id}.${body}.${signature}A`, 'a long signature'],
    [`${id}.${body}.${signature.slice(0, 42)}=`, 'a padded signature'],
    [`${id}.${body}==.${signature}`, 'a padded body'],
    [`${id}.${body.slice(0, 10)}+${body.slice(11)}.${signature}`, 'standard base64 in the body'],
    [`${'k'.repeat(33)}.${body}.${signature}`, 'a key id over 32 characters'],
    [`${id}.${'A'.repeat(8001)}.${signature}`, 'a body over 8,000 characters'],
    [` ${token}`, 'a leading space'],
    [`${token}\n`, 'a trailing line feed'],
    [encodeURIComponent(token).replace(/\./g, '%2E'), 'percent-encoded']
  ]
  for (const [value, why] of malformed) t.same(verifyLink(value, [NEW], NOW), { problem: 'malformed' }, why)
  // Signed with a key of the ring, but not claims: the signature is checked first, the claims after.
  const bodies: Array<[string, string]> = [
    [Buffer.from('not json').toString('base64url'), 'not JSON'],
    [bodyOf(null), 'null'],
    [bodyOf([1, 2]), 'a list'],
    [bodyOf({ u: 'a', b: 'b', r: 'c' }), 'no expiry'],
    [bodyOf({ u: 'a', b: 'b', r: 'c', e: String(NOW + 60) }), 'an expiry that is a string'],
    [bodyOf({ u: 1, b: 'b', r: 'c', e: NOW + 60 }), 'a user that is a number'],
    [bodyOf({ u: 'a', r: 'c', e: NOW + 60 }), 'no backend'],
    [bodyOf({ u: 'a', b: 'b', r: null, e: NOW + 60 }), 'a null URI'],
    [bodyOf({ u: 'a', b: 'b', r: 'c', e: NOW + 60 }), 'no names'],
    [bodyOf({ u: 'a', n: ['a', 1], p: null, b: 'b', r: 'c', e: NOW + 60 }), 'a name that is a number'],
    [bodyOf({ u: 'a', n: ['a'], p: '3', b: 'b', r: 'c', e: NOW + 60 }), 'a project that is a string']
  ]
  for (const [b, why] of bodies) t.same(verifyLink(signedToken(NEW, b), [NEW], NOW), { problem: 'malformed' }, why)
  t.same(verifyLink(`${id}.${Buffer.from('not json').toString('base64url')}.${signature}`, [NEW], NOW),
    { problem: 'bad-signature' }, 'an unsigned body is not even parsed')
})

t.test('a link names its object exactly as the resolver named it', async (t) => {
  const uri = 's3://labelling/images/cat 1.png'
  const claims = verifyLink(mintLink({ ...CLAIMS, uri }, NEW), [NEW], NOW)
  t.equal('claims' in claims ? claims.claims.uri : null, uri)
  t.not(mintLink({ ...CLAIMS, uri: 's3://labelling/images/cat' }, NEW), mintLink({ ...CLAIMS, uri }, NEW))
  t.notOk(mintLink({ ...CLAIMS, uri }, NEW).includes(encodeFileUri(uri)), 'the body is JSON, not the fileuri')
})

// ---- local files

/** The path of the file resolveInside opens; the file is closed again. */
async function openedPath (root: string, name: string): Promise<string> {
  const file = await resolveInside(root, name)
  await file.handle.close()
  return file.path
}

interface Coded { code?: string, statusCode?: number, detail?: string }

async function refusal (promise: Promise<unknown>): Promise<Coded> {
  try {
    await promise
  } catch (err) {
    return err as Coded
  }
  throw new Error('expected a refusal')
}

t.test('resolveInside keeps a name inside its root', async (t) => {
  const base = tempDir(t)
  const root = join(base, 'root')
  mkdirSync(join(root, 'sub', 'deeper'), { recursive: true })
  mkdirSync(join(base, 'outside'))
  mkdirSync(join(base, 'root-sibling'))
  writeFileSync(join(root, 'a.png'), 'a')
  writeFileSync(join(root, 'sub', 'b.png'), 'b')
  writeFileSync(join(root, 'sub', 'deeper', 'c d #1?.png'), 'c')
  writeFileSync(join(root, '..dots'), 'd')
  writeFileSync(join(base, 'outside', 'secret.txt'), 's')
  writeFileSync(join(base, 'root-sibling', 'x.png'), 'x')
  writeFileSync(join(base, 'top.txt'), 't')
  symlinkSync(join(root, 'sub', 'b.png'), join(root, 'link-inside.png'))
  symlinkSync('sub/b.png', join(root, 'relative-link.png'))
  symlinkSync(join(base, 'outside', 'secret.txt'), join(root, 'link-outside.txt'))
  symlinkSync('../outside/secret.txt', join(root, 'relative-outside.txt'))
  symlinkSync(join(base, 'outside'), join(root, 'dir-outside'))
  symlinkSync(join(root, 'sub'), join(root, 'dir-inside'))
  symlinkSync(join(root, 'nowhere'), join(root, 'broken.png'))
  symlinkSync(root, join(base, 'root-link'))

  const inside: Array<[string, string]> = [
    ['a.png', 'a.png'],
    ['sub/b.png', 'sub/b.png'],
    ['/a.png', 'a.png'],
    ['//sub//b.png', 'sub/b.png'],
    ['./a.png', 'a.png'],
    ['sub/../a.png', 'a.png'],
    ['sub/deeper/../../sub/b.png', 'sub/b.png'],
    ['../root/a.png', 'a.png'],
    ['sub/deeper/c d #1?.png', 'sub/deeper/c d #1?.png'],
    ['..dots', '..dots'],
    ['link-inside.png', 'sub/b.png'],
    ['relative-link.png', 'sub/b.png'],
    ['dir-inside/b.png', 'sub/b.png']
  ]
  for (const [name, real] of inside) t.equal(await openedPath(root, name), join(root, real), name)
  t.equal(await openedPath(join(base, 'root-link'), 'a.png'), join(root, 'a.png'), 'a root that is itself a link')

  const outside = ['../top.txt', '../outside/secret.txt', 'sub/../../top.txt', '../../../../../../etc/passwd',
    '../root-sibling/x.png', 'link-outside.txt', 'relative-outside.txt', 'dir-outside/secret.txt']
  for (const name of outside) {
    t.match(await refusal(resolveInside(root, name)), { code: 'LG_ERR_MEDIA_NO_BACKEND', statusCode: 403, detail: /^local-(link-)?outside$/ }, name)
  }
  const missing: Array<[string, string]> = [
    ['nope.png', 'local-missing'],
    ['sub/nope/b.png', 'local-missing'],
    ['broken.png', 'local-missing'],
    ['sub', 'local-not-a-file'],
    ['sub/', 'local-not-a-file'],
    ['.', 'local-not-a-file'],
    ['dir-inside', 'local-not-a-file']
  ]
  for (const [name, detail] of missing) {
    t.match(await refusal(resolveInside(root, name)), { code: 'LG_ERR_MEDIA_NOT_FOUND', statusCode: 404, detail }, name)
  }
  t.match(await refusal(resolveInside(root, 'dir-outside')), { statusCode: 403 }, 'a directory outside: outside first')
  t.match(await refusal(resolveInside(root, '../nope-outside.png')), { statusCode: 403, detail: 'local-outside' },
    'a missing file outside: outside first, so that the answer does not tell whether it exists')
  const refused = ['', 'a.png\u0000.txt', '\u0000', 'sub\\b.png', '..\\top.txt', 'a\nb', 'a\u007f', 'x'.repeat(4097)]
  for (const name of refused) {
    t.match(await refusal(resolveInside(root, name)), { code: 'LG_ERR_MEDIA_BAD_URI', statusCode: 400, detail: 'local-path-refused' },
      JSON.stringify(name.slice(0, 20)))
  }
})

t.test('resolveInside: a root that does not exist is a missing file, not a failure', async (t) => {
  const base = tempDir(t)
  // Uploads: /data/upload/<project>/<name> is read from <uploads_root>/<project>, which a project
  // without uploads does not have.
  t.match(await refusal(resolveInside(join(base, 'no-such-project'), 'a.png')),
    { code: 'LG_ERR_MEDIA_NOT_FOUND', statusCode: 404 })
})

t.test('isInside compares whole path segments', async (t) => {
  t.ok(isInside('/srv/root', '/srv/root'))
  t.ok(isInside('/srv/root', '/srv/root/a'))
  t.ok(isInside('/srv/root/', '/srv/root/a'))
  t.notOk(isInside('/srv/root', '/srv/root-other/a'))
  t.notOk(isInside('/srv/root', '/srv/rootx'))
  t.notOk(isInside('/srv/root', '/srv'))
  t.notOk(isInside('/srv/root', '/other'))
})

t.test('preconditions follow RFC 9110 13.2.2 for a GET of an existing object', async (t) => {
  const version = { etag: '"v1"', lastModified: Date.parse('Wed, 02 Dec 2026 10:00:00 GMT') }
  const cases: Array<[IncomingHttpHeaders, 304 | 412 | null, string]> = [
    [{}, null, 'no conditional'],
    [{ 'if-match': '"v1"' }, null, 'If-Match of this version'],
    [{ 'if-match': '"v0", "v1"' }, null, 'If-Match listing it'],
    [{ 'if-match': '"v0"' }, 412, 'If-Match of another version'],
    [{ 'if-match': 'W/"v1"' }, 412, 'If-Match compares strongly'],
    [{ 'if-match': '*' }, null, 'If-Match: * of an object that exists'],
    [{ 'if-match': 'garbage' }, 412, 'an If-Match that names no tag'],
    [{ 'if-unmodified-since': 'Tue, 01 Dec 2026 10:00:00 GMT' }, 412, 'changed since'],
    [{ 'if-unmodified-since': 'Wed, 02 Dec 2026 10:00:00 GMT' }, null, 'not changed since'],
    [{ 'if-unmodified-since': '3000' }, null, 'a date that is not an HTTP-date is ignored'],
    [{ 'if-match': '"v1"', 'if-unmodified-since': 'Tue, 01 Dec 2026 10:00:00 GMT' }, null, 'If-Match decides over If-Unmodified-Since'],
    [{ 'if-none-match': '"v1"' }, 304, 'If-None-Match of this version'],
    [{ 'if-none-match': 'W/"v1"' }, 304, 'If-None-Match compares weakly'],
    [{ 'if-none-match': '*' }, 304, 'If-None-Match: * of an object that exists'],
    [{ 'if-none-match': '"v0"' }, null, 'If-None-Match of another version'],
    [{ 'if-none-match': '"v0"', 'if-modified-since': 'Thu, 03 Dec 2026 10:00:00 GMT' }, null, 'If-None-Match decides over If-Modified-Since'],
    [{ 'if-modified-since': 'Thu, 03 Dec 2026 10:00:00 GMT' }, 304, 'not modified since'],
    [{ 'if-modified-since': 'Tue, 01 Dec 2026 10:00:00 GMT' }, null, 'modified since'],
    [{ 'if-modified-since': '3000' }, null, 'an If-Modified-Since that is not an HTTP-date is ignored'],
    [{ 'if-match': '"v0"', 'if-none-match': '"v1"' }, 412, 'a failed If-Match wins over a matched If-None-Match']
  ]
  for (const [headers, expected, why] of cases) t.equal(preconditions(headers, version), expected, why)
  t.equal(preconditions({ 'if-match': '"v1"' }, { etag: 'W/"v1"', lastModified: null }), 412, 'a weak tag never passes If-Match')
  t.equal(preconditions({ 'if-modified-since': 'Thu, 03 Dec 2026 10:00:00 GMT' }, { etag: null, lastModified: null }), null,
    'no date known: sent')
})

t.test('byteRange reads one range against the file\'s size', async (t) => {
  const cases: Array<[IncomingHttpHeaders, ReturnType<typeof byteRange>, string]> = [
    [{}, null, 'none'],
    [{ range: 'bytes=0-9' }, { start: 0, end: 9 }, 'first ten'],
    [{ range: 'bytes=90-200' }, { start: 90, end: 99 }, 'an end past the size is cut'],
    [{ range: 'bytes=95-' }, { start: 95, end: 99 }, 'open-ended'],
    [{ range: 'bytes=-10' }, { start: 90, end: 99 }, 'suffix'],
    [{ range: 'bytes=-500' }, { start: 0, end: 99 }, 'a suffix longer than the file'],
    [{ range: 'bytes=-0' }, 'unsatisfiable', 'an empty suffix'],
    [{ range: 'bytes=100-' }, 'unsatisfiable', 'starting at the size'],
    [{ range: 'bytes=5-2' }, null, 'backwards: ignored'],
    [{ range: 'bytes=0-1,5-6' }, null, 'several: the whole file'],
    [{ range: 'items=0-1' }, null, 'another unit'],
    [{ range: 'bytes=0-9', 'if-range': '"v1"' }, null, 'under If-Range: the whole file']
  ]
  for (const [headers, expected, why] of cases) t.same(byteRange(headers, 100), expected, why)
  t.equal(byteRange({ range: 'bytes=-5' }, 0), 'unsatisfiable', 'any range of an empty file')
})

t.test('a local file that is a FIFO is not waited on', async (t) => {
  const root = tempDir(t)
  execFileSync('mkfifo', [join(root, 'pipe')])
  t.match(await refusal(resolveInside(root, 'pipe')), { code: 'LG_ERR_MEDIA_NOT_FOUND', detail: 'local-not-a-file' })
})
