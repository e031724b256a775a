import t from 'tap'
import { collectReferences, MAX_REFERENCES, TooManyReferences } from '../../src/media/references.js'
import { decodeFileUri, encodeFileUri, MAX_URI_LENGTH, parseStorageUri } from '../../src/media/uri.js'

// Storage URIs and the `fileuri` that carries one: what the gateway reads as which object, and
// which objects a task's data references. A wrong answer here serves an object the task never named.

const b64url = (bytes: Buffer | string): string => Buffer.from(bytes).toString('base64url')
const b64std = (text: string): string => Buffer.from(text).toString('base64')
/** A fileuri as a query string carries it, read back as the route reads it. */
const fromQuery = (raw: string): string => new URLSearchParams(`fileuri=${raw}`).get('fileuri') ?? ''

function thrown (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

t.test('parseStorageUri splits scheme, bucket and key, and keeps the URI as written', async (t) => {
  t.same(parseStorageUri('s3://bucket-1/dir/a b.png'), { scheme: 's3', bucket: 'bucket-1', key: 'dir/a b.png', uri: 's3://bucket-1/dir/a b.png' })
  t.same(parseStorageUri('gs://my.bucket/x'), { scheme: 'gs', bucket: 'my.bucket', key: 'x', uri: 'gs://my.bucket/x' })
  t.same(parseStorageUri('azure-blob://container/日本/ü?.png#1'),
    { scheme: 'azure-blob', bucket: 'container', key: '日本/ü?.png#1', uri: 'azure-blob://container/日本/ü?.png#1' })
  t.same(parseStorageUri('s3://b1//leading/and/trailing/'), { scheme: 's3', bucket: 'b1', key: '/leading/and/trailing/', uri: 's3://b1//leading/and/trailing/' })
})

t.test('parseStorageUri refuses what no backend should be asked for', async (t) => {
  const refused: Array<[string, string]> = [
    ['', 'empty'],
    ['s3://b1', 'no key'],
    ['s3://b1/', 'an empty key'],
    ['S3://b1/a.png', 'an upper-case scheme'],
    ['http://b1/a.png', 'another scheme'],
    ['s3:/b1/a.png', 'one slash'],
    ['s3://b1?x/a.png', 'a query in the bucket'],
    ['s3://b1#x/a.png', 'a fragment in the bucket'],
    ['s3://a/k', 'a one-character bucket'],
    ['s3://.bucket/k', 'a bucket starting with a dot'],
    ['s3://-bucket/k', 'a bucket starting with a dash'],
    ['s3://_bucket/k', 'a bucket starting with an underscore'],
    ['s3://buck..et/k', 'a bucket with two dots'],
    ['s3://buck:et/k', 'a bucket with a colon'],
    ['s3://user@bucket/k', 'a bucket with credentials'],
    ['s3://buck%20et/k', 'a percent sign in a bucket'],
    [`s3://${'b'.repeat(256)}/k`, 'a bucket of 256 characters'],
    ['s3://b1/.', 'a key that is "."'],
    ['s3://b1/..', 'a key that is ".."'],
    ['s3://b1/a/../secret', 'a ".." segment'],
    ['s3://b1/./a', 'a "." segment'],
    ['s3://b1/a/..', 'a trailing ".." segment'],
    ['s3://b1/a/./', 'a "." segment before a trailing slash'],
    ['s3://b1/a\nb', 'a line feed'],
    ['s3://b1/a\rb', 'a carriage return'],
    ['s3://b1/a\tb', 'a tab'],
    ['s3://b1/a\u0000b', 'NUL'],
    ['s3://b1/a\u001bb', 'escape'],
    ['s3://b1/a\u007fb', 'DEL'],
    ['s3://b\u0000c/a', 'NUL in the bucket'],
    [`s3://b1/${'k'.repeat(MAX_URI_LENGTH)}`, 'longer than MAX_URI_LENGTH'],
    [' s3://b1/a.png', 'leading white space']
  ]
  for (const [uri, why] of refused) t.equal(parseStorageUri(uri), null, why)
  const accepted = [
    's3://ab/k', 's3://Bucket_Name/k', `s3://${'b'.repeat(255)}/k`, 's3://b1/a..b', 's3://b1/.hidden', 's3://b1/...',
    's3://b1/a/.../b', 's3://b1/%2e%2e/x', 's3://b1/a b', 's3://b1/\u00a0\u2028\u0085', `s3://b1/${'k'.repeat(MAX_URI_LENGTH - 8)}`
  ]
  accepted.forEach((uri, i) => t.equal(parseStorageUri(uri)?.uri, uri, `accepted #${i}`))
})

t.test('decodeFileUri reads URL-safe base64 with its padding written, left out or percent-decoded', async (t) => {
  // 13, 14 and 15 bytes: two, one and no padding characters.
  for (const uri of ['s3://b1/a.png', 's3://b1/ab.png', 's3://b1/abc.png', 's3://bucket/~~~>>>???.png']) {
    const unpadded = encodeFileUri(uri)
    t.notOk(unpadded.includes('='), 'encodeFileUri writes no padding')
    t.equal(Buffer.from(unpadded, 'base64url').toString(), uri, 'encodeFileUri is base64url')
    const padded = unpadded + '='.repeat((4 - unpadded.length % 4) % 4)
    for (const value of [unpadded, padded, fromQuery(padded.replace(/=/g, '%3D')), fromQuery(padded)]) {
      t.equal(decodeFileUri(value)?.uri, uri, `${uri} from ${value}`)
    }
  }
  t.equal(decodeFileUri('czM6Ly9iMS9hLnBuZw==')?.key, 'a.png')
  t.equal(decodeFileUri('czM6Ly9iMS9hYi5wbmc=')?.key, 'ab.png')
})

t.test('decodeFileUri falls back to the value as the URI itself, as Label Studio does', async (t) => {
  t.same(decodeFileUri('s3://b1/a.png'), { scheme: 's3', bucket: 'b1', key: 'a.png', uri: 's3://b1/a.png' })
  t.equal(decodeFileUri(fromQuery('s3%3A%2F%2Fb1%2Fa%20b.png'))?.uri, 's3://b1/a b.png')
  t.equal(decodeFileUri('gs://b1/x')?.scheme, 'gs')
  t.equal(decodeFileUri('azure-blob://c1/x')?.scheme, 'azure-blob')
  t.equal(decodeFileUri('s3://b1/../x'), null, 'the fallback is checked as strictly')
})

t.test('decodeFileUri reads base64 strictly: only the exact URL-safe encoding of a URI', async (t) => {
  const uri = 's3://bucket/~~~>>>???.png'
  const url = encodeFileUri(uri)
  t.match(url, /[-_]/, 'this URI\'s encoding uses both URL-safe characters')
  const standard = b64std(uri)
  t.match(standard, /[+/]/)
  // The standard alphabet is refused; through a query string its "+" would even arrive as a space.
  t.equal(decodeFileUri(standard), null, 'standard alphabet')
  t.equal(decodeFileUri(standard.replace(/=+$/, '')), null, 'standard alphabet, unpadded')
  t.equal(decodeFileUri(fromQuery(standard)), null, 'standard alphabet through a query string')
  t.equal(decodeFileUri(fromQuery(encodeURIComponent(standard))), null, 'standard alphabet, percent-encoded')

  // Trailing bits set: decodes to the same bytes, but is not what encoding them gives.
  const canonical = encodeFileUri('s3://b1/a.png')
  t.equal(canonical, 'czM6Ly9iMS9hLnBuZw')
  for (const last of ['x', 'y', 'z']) {
    const loose = canonical.slice(0, -1) + last
    t.equal(Buffer.from(loose, 'base64url').toString(), 's3://b1/a.png', 'Node would decode it')
    t.equal(decodeFileUri(loose), null, `trailing bits: ${loose}`)
    t.equal(decodeFileUri(loose + '=='), null, `trailing bits, padded: ${loose}==`)
  }
  const refused: Array<[string, string]> = [
    ['', 'empty'],
    [canonical + '===', 'three padding characters'],
    ['=' + canonical, 'padding in front'],
    [canonical.slice(0, 6) + '=' + canonical.slice(6), 'padding inside'],
    [canonical + 'A', 'a length of 4n+1'],
    [canonical + ' ', 'a trailing space'],
    [canonical.slice(0, 6) + '.' + canonical.slice(6), 'a dot inside'],
    [b64url('s3://b1/a/../b'), 'a ".." segment'],
    [b64url('s3://b1/./b'), 'a "." segment'],
    [b64url('s3://b1/a\nb'), 'a line feed'],
    [b64url('s3://b1/a\u0000b'), 'NUL'],
    [b64url('s3://x/a'), 'a one-character bucket'],
    [b64url('S3://b1/a'), 'an upper-case scheme'],
    [b64url('https://b1/a'), 'another scheme'],
    [b64url('not a uri'), 'text that is not a URI'],
    [b64url(Buffer.concat([Buffer.from('s3://b1/a'), Buffer.from([0xff])])), 'invalid UTF-8'],
    [b64url(Buffer.concat([Buffer.from('s3://b1/a'), Buffer.from([0xe6, 0x97])])), 'truncated UTF-8'],
    [b64url(Buffer.concat([Buffer.from('s3://b1/a/'), Buffer.from([0xc0, 0xae, 0xc0, 0xae]), Buffer.from('/b')])),
      'overlong UTF-8 for ".."'],
    [b64url(Buffer.concat([Buffer.from('s3://b1/'), Buffer.from([0xed, 0xa0, 0x80])])), 'UTF-8 of a surrogate'],
    [b64url(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('s3://b1/a.png')])), 'a byte-order mark']
  ]
  for (const [value, why] of refused) t.equal(decodeFileUri(value), null, why)
})

t.test('every fileuri accepted as base64 is the exact encoding of the URI it names', async (t) => {
  const uris = ['s3://b1/a.png', 'gs://b-2/日本語/ファイル.jpg', 'azure-blob://c3/ü ö/😀.png', 's3://b1/a+b=c&d%20e.png',
    's3://b1/"quoted" <tag>\'s.png']
  for (const uri of uris) {
    const value = encodeFileUri(uri)
    const decoded = decodeFileUri(value)
    t.equal(decoded?.uri, uri, uri)
    t.equal(encodeFileUri(decoded?.uri ?? ''), value)
  }
  t.same(decodeFileUri(encodeFileUri('gs://b-2/日本語/ファイル.jpg')), { scheme: 'gs', bucket: 'b-2', key: '日本語/ファイル.jpg', uri: 'gs://b-2/日本語/ファイル.jpg' })
})

t.test('decodeFileUri: lengths', async (t) => {
  const longest = `s3://b1/${'k'.repeat(MAX_URI_LENGTH - 8)}`
  t.equal(longest.length, MAX_URI_LENGTH)
  t.equal(decodeFileUri(encodeFileUri(longest))?.uri, longest, 'the longest URI, in base64')
  t.equal(decodeFileUri(longest)?.uri, longest, 'the longest URI, as itself')
  t.equal(decodeFileUri(encodeFileUri(longest + 'k')), null, 'one character more, in base64')
  t.equal(decodeFileUri(longest + 'k'), null, 'one character more, as itself')
  // Length is counted in characters, as the URI is: a URI of characters three UTF-8 bytes long
  // is accepted in base64 exactly when it is accepted as itself.
  const wide = `s3://b1/${'日'.repeat(MAX_URI_LENGTH - 8)}`
  t.equal(decodeFileUri(wide)?.uri, wide)
  t.equal(decodeFileUri(encodeFileUri(wide))?.uri, wide)
  t.equal(decodeFileUri('A'.repeat(100_000)), null, 'a long value is refused')
})

// ---- references

t.test('collectReferences finds URIs as whole values, in lists and at any depth', async (t) => {
  const data = {
    image: 's3://b1/a.png',
    list: ['gs://b2/x.jpg', 'not a uri', 7, null, true, { deep: [[{ audio: 'azure-blob://c1/sound.wav' }]] }],
    meta: { name: 's3://b1/with space and "quotes".png', n: 1.5 },
    empty: {},
    none: null
  }
  t.same([...collectReferences(data)].sort(), [
    'azure-blob://c1/sound.wav', 'gs://b2/x.jpg', 's3://b1/a.png', 's3://b1/with space and "quotes".png'
  ])
  t.same([...collectReferences('s3://b1/a.png')], ['s3://b1/a.png'], 'a bare string')
  t.same([...collectReferences(['s3://b1/a.png', 's3://b1/a.png'])], ['s3://b1/a.png'], 'once each')
  for (const value of [null, undefined, 0, true, {}, [], 'plain text', 's3://b1/../x', 's3://b1/a\u0000']) {
    t.equal(collectReferences(value).size, 0, JSON.stringify(value) ?? 'undefined')
  }
})

t.test('collectReferences reads URIs inside longer text, ending at space, quotes, brackets and backslashes', async (t) => {
  const html = '<p>See <img src="s3://b1/cat.png"> and <a href=\'gs://b2/dir/dog.jpg\'>this</a>,\n' +
    'also <audio src=azure-blob://c1/a.wav></audio> and s3://b1/x.png\\n then "s3://b1/y.png"</p>'
  const found = collectReferences({ html })
  for (const uri of ['s3://b1/cat.png', 'gs://b2/dir/dog.jpg', 'azure-blob://c1/a.wav', 's3://b1/x.png', 's3://b1/y.png']) {
    t.ok(found.has(uri), uri)
  }
  t.notOk([...found].some((uri) => /[\s"'<>\\]/.test(uri) && uri !== html), 'no embedded URI runs past its end')
  const text = collectReferences('two links: s3://b1/one.png s3://b1/two.png')
  t.ok(text.has('s3://b1/one.png'))
  t.ok(text.has('s3://b1/two.png'))
  t.notOk(collectReferences('see s3://b1/a/../secret.png').has('s3://b1/a/../secret.png'), '.. inside text is refused too')
})

t.test('collectReferences reads back the resolver links Label Studio writes in place of URIs', async (t) => {
  const uri = 's3://b1/a.png'
  const plain = encodeFileUri(uri)
  const padded = plain + '=='
  const links = [
    `/tasks/12/resolve/?fileuri=${plain}`,
    `/tasks/12/resolve?fileuri=${plain}`,
    `https://ls.example.com/tasks/1/presign/?fileuri=${padded}`,
    `/projects/3/resolve/?fileuri=${plain}%3D%3D`,
    `/projects/3/presign/?other=1&fileuri=${plain}&more=2`,
    `<img src="/tasks/9/resolve/?fileuri=${plain}">`,
    `/tasks/1/resolve/?fileuri=${encodeURIComponent(uri)}`
  ]
  for (const link of links) t.same([...collectReferences({ v: link })].filter((u) => u === uri), [uri], link)
  t.notOk(collectReferences({ v: `/tasks/1/other/?fileuri=${plain}` }).has(uri), 'another route')
  t.notOk(collectReferences({ v: `/tasks/x/resolve/?fileuri=${plain}` }).has(uri), 'no task id')
  t.notOk(collectReferences({ v: `/tasks/1/resolve/?fileuri=${plain.slice(0, -1)}x` }).has(uri), 'non-canonical base64')
  t.notOk(collectReferences({ v: `/tasks/1/resolve/?fileuri=${b64std('s3://bucket/~~~>>>???.png')}` })
    .has('s3://bucket/~~~>>>???.png'), 'standard base64')
  t.equal(collectReferences({ v: '/tasks/1/resolve/?fileuri=%E0%A4%A' }).size, 0, 'broken percent-encoding')
  const two = collectReferences(`/tasks/1/resolve/?fileuri=${plain} /tasks/1/resolve/?fileuri=${encodeFileUri('gs://b2/z')}`)
  t.ok(two.has(uri))
  t.ok(two.has('gs://b2/z'))
})

t.test('a reference is exact: no prefix, no extension, no other bucket or scheme', async (t) => {
  const uri = 's3://bk/a.png'
  for (const value of [uri, [uri], `<img src="${uri}">`, `see ${uri} and more`, `/tasks/1/resolve/?fileuri=${encodeFileUri(uri)}`]) {
    const found = collectReferences({ value })
    t.ok(found.has(uri), `${JSON.stringify(value)} references ${uri}`)
    for (const other of ['s3://bk/a.png.secret', 's3://bk/a', 's3://bk/a.pn', 's3://bk/A.png', 's3://bk/a.png/', 's3://bk/a.png ',
      's3://bkk/a.png', 's3://b/a.png', 'gs://bk/a.png', 's3://bk/x/../a.png', 's3://bk//a.png']) {
      t.notOk(found.has(other), `${JSON.stringify(value)} does not reference ${other}`)
    }
  }
  t.notOk(collectReferences('s3://bk/a.png.secret').has(uri), 'nor does a longer key reference a shorter one')
})

t.test('a whole value is one reference: no part of a key is another', async (t) => {
  // A key may hold spaces and quotes; the object it names is the only one referenced, as Label
  // Studio reads a value that starts with a storage scheme as one URI (after trimming it).
  const cases: Array<[string, string]> = [
    ['s3://bk/photos/cat 1.jpg', 's3://bk/photos/cat'],
    ['s3://bk/it\'s.png', 's3://bk/it'],
    ['s3://bk/say "hi".png', 's3://bk/say'],
    ['s3://bk/a<b>.png', 's3://bk/a'],
    ['s3://bk/dir\\x.png', 's3://bk/dir'],
    ['s3://bk/a.png s3://bk/b.png', 's3://bk/a.png']
  ]
  for (const [value, part] of cases) {
    const found = collectReferences({ value })
    t.same([...found], [value], JSON.stringify(value))
    t.notOk(found.has(part), `not ${part}`)
  }
  t.same([...collectReferences(' s3://bk/padded.png\n')], ['s3://bk/padded.png'], 'white space around a whole value')
})

t.test('collectReferences stops descending past its depth limit, without overflowing the stack', async (t) => {
  const nested = (depth: number, leaf: unknown): unknown => {
    let value = leaf
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value }
    return value
  }
  t.ok(collectReferences(nested(40, 's3://b1/a.png')).has('s3://b1/a.png'), '40 levels down')
  t.equal(collectReferences(nested(200, 's3://b1/a.png')).size, 0, '200 levels down')
  t.equal(collectReferences(nested(200_000, 's3://b1/a.png')).size, 0, '200,000 levels down')
  const wide = { a: nested(200, 's3://b1/deep.png'), b: 's3://b1/shallow.png' }
  t.same([...collectReferences(wide)], ['s3://b1/shallow.png'], 'a deep branch does not hide a shallow one')
})

t.test('collectReferences throws past MAX_REFERENCES distinct URIs', async (t) => {
  const uris = (n: number): string[] => Array.from({ length: n }, (_, i) => `s3://b1/${i}.png`)
  t.equal(collectReferences(uris(MAX_REFERENCES)).size, MAX_REFERENCES)
  t.ok(thrown(() => collectReferences(uris(MAX_REFERENCES + 1))) instanceof TooManyReferences)
  t.equal(collectReferences(Array.from({ length: MAX_REFERENCES * 3 }, () => 's3://b1/same.png')).size, 1, 'repeats count once')
  t.ok(thrown(() => collectReferences({ text: `list: ${uris(MAX_REFERENCES + 1).join(' ')}` })) instanceof TooManyReferences,
    'inside one text too')
})

t.test('collectReferences: a quoted URI inside text runs to its closing quote; trailing punctuation is read both ways', async (t) => {
  const html = '<img src="s3://bk/photos/cat 1.jpg"> <a href=\'gs://bk/b c.png\'>x</a> see s3://bk/a.png, and (gs://bk/b.png).'
  const found = collectReferences({ html })
  t.ok(found.has('s3://bk/photos/cat 1.jpg'), 'a double-quoted key with a space')
  t.notOk(found.has('s3://bk/photos/cat'), 'and not the part before its space')
  t.ok(found.has('s3://bk/a.png'), 'a URI followed by a comma')
  t.ok(found.has('s3://bk/a.png,'), 'or a key that ends with one')
  t.ok(found.has('gs://bk/b.png'), 'a URI in parentheses')
  t.ok(found.has('gs://bk/b c.png'), 'a single-quoted key with a space')
  t.notOk(found.has('gs://bk/b'), 'and not the part before its space')
})
