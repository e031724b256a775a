import { Readable } from 'node:stream'
import t from 'tap'
import { sendFiltered } from '../../src/proxy/bodies.js'
import { compileFields } from '../../src/policy/fields.js'
import type { CompiledRule } from '../../src/policy/compile.js'

// sendFiltered decides what of an upstream answer reaches the client on a filtered route; the
// reply here is a plain recorder of what it is told, the stream a real one.

const rule = {
  response: { fields: compileFields(['id', 'name']), fieldList: ['id', 'name'] }
} as unknown as CompiledRule
const filters = { requestMaxBytes: 1024, responseMaxBytes: 64, dropFields: new Set(['token']) }

function recorder (headers: Record<string, string>) {
  const state = { headers: { ...headers }, sent: undefined as unknown }
  const reply = {
    getHeader: (name: string) => state.headers[name],
    removeHeader: (name: string) => { delete state.headers[name] },
    type: (value: string) => { state.headers['content-type'] = value; return reply },
    send: (payload: unknown) => { state.sent = payload }
  }
  return { state, reply }
}

async function run (body: string, headers: Record<string, string>, method = 'GET', status = 200) {
  const { state, reply } = recorder(headers)
  await sendFiltered(reply, rule, Readable.from([Buffer.from(body)]), filters, method, status)
  return state
}

const JSON_HEADERS = { 'content-type': 'application/json', 'content-length': '99', etag: '"e"' }

t.test('JSON is filtered, the drop list applied, and body headers of the original removed', async (t) => {
  const out = await run('{"id":1,"name":"a","email":"x@y","token":"s"}', JSON_HEADERS)
  t.equal(out.sent, '{"id":1,"name":"a"}')
  t.notOk('etag' in out.headers)
  t.notOk('content-length' in out.headers)
})

t.test('an empty answer stays empty', async (t) => {
  t.equal((await run('', JSON_HEADERS)).sent, '')
})

t.test('what cannot be filtered is never passed on', async (t) => {
  for (const [body, headers] of [
    ['<html>x</html>', { 'content-type': 'text/html' }],
    ['{"id":1}', { 'content-type': 'application/json', 'content-encoding': 'gzip' }],
    ['{"id":1,"name":"' + 'x'.repeat(100) + '"}', JSON_HEADERS],
    ['{"id":', JSON_HEADERS]
  ] as Array<[string, Record<string, string>]>) {
    const out = await run(body, headers)
    t.match(out.sent, { code: 'LG_ERR_UPSTREAM_BAD_RESPONSE' }, body.slice(0, 20))
    t.notOk('content-encoding' in out.headers)
  }
})

t.test('HEAD answers and redirects carry no body and no length of the unfiltered one', async (t) => {
  const head = await run('{"id":1,"email":"x"}', JSON_HEADERS, 'HEAD')
  t.equal(head.sent, undefined)
  t.notOk('content-length' in head.headers)
  const redirect = await run('{"email":"x"}', { ...JSON_HEADERS, location: '/x' }, 'GET', 302)
  t.equal(redirect.sent, '')
  t.equal(redirect.headers.location, '/x')
})
