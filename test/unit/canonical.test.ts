import t from 'tap'
import { checkHeaders, checkTarget } from '../../src/edge/canonical.js'

t.test('accepts canonical targets and splits path from query', async (t) => {
  for (const [raw, path, query] of [
    ['/', '/', ''],
    ['/api/projects/', '/api/projects/', ''],
    ['/api/projects/1', '/api/projects/1', ''],
    ['/api/tasks/?project=1&query=%7B%7D', '/api/tasks/', 'project=1&query=%7B%7D'],
    ['/data/upload/1/a%20b%C3%A9.png', '/data/upload/1/a%20b%C3%A9.png', ''],
    ["/x/it's(1)+a,b=c:d@e!$&*~", "/x/it's(1)+a,b=c:d@e!$&*~", '']
  ] as const) {
    t.same(checkTarget(raw), { target: { path, query } }, raw)
  }
})

t.test('refuses every ambiguous target with a reason', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['*', /asterisk/], ['http://h/x', /origin-form/], ['h:443', /origin-form/], ['/a#b', /fragment/],
    ['/a/%2F', /encoded \//], ['/a/%5c', /encoded \\/], ['/a/%3b', /encoded ;/], ['/a/%3F', /encoded \?/],
    ['/a/%23', /encoded #/], ['/a/%00', /NUL/], ['/a/%25', /encoded %/], ['/a/%2e', /unreserved/],
    ['/a/%41', /unreserved/], ['/a/%0a', /control/], ['/a/%g1', /malformed/], ['/a/%4', /malformed/],
    ['/a/./b', /dot segment/], ['/a/../b', /dot segment/], ['/a/..', /dot segment/], ['/a//b', /empty segment/],
    ['//a', /empty segment/], ['/a\\b', /backslash/], ['/a;b', /;/], ['/a b', /percent-encoded/],
    ['/a"b', /percent-encoded/], ['/a<b>', /percent-encoded/], ['/a{b}', /percent-encoded/], ['/é', /percent-encoded/],
    ['/a?_method=DELETE', /_method/], ['/a?x=1&_METHOD=put', /_method/], ['/a?%5Fmethod=put', /_method/],
    ['/a?q=a b', /query/]
  ]
  for (const [raw, reason] of cases) {
    const result = checkTarget(raw)
    t.ok('problem' in result && reason.test(result.problem), `${raw} → ${'problem' in result ? result.problem : 'accepted'}`)
  }
})

t.test('refuses ambiguous header sets', async (t) => {
  t.equal(checkHeaders(['Host', 'a', 'Authorization', 'Token x', 'Accept', '*/*', 'Accept', 'json']), null, 'repeated ordinary headers are fine')
  t.match(checkHeaders(['Authorization', 'a', 'authorization', 'b']), { kind: 'ambiguous' })
  t.match(checkHeaders(['Host', 'a', 'HOST', 'b']), { kind: 'ambiguous' })
  t.match(checkHeaders(['Content-Length', '1', 'Transfer-Encoding', 'chunked']), { kind: 'ambiguous' })
  t.match(checkHeaders(['X_Api_Key', 'a']), { kind: 'ambiguous', message: /underscore/ })
  t.match(checkHeaders(['X-HTTP-Method-Override', 'DELETE']), { kind: 'override' })
  t.match(checkHeaders(['X-Http-Method', 'DELETE']), { kind: 'override' })
})
