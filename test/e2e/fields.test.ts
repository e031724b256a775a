import { join } from 'node:path'
import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'
import { REPO_ROOT } from '../support/tmp.js'

// Request, query and response allowlists through the gateway, against the Label Studio stand-in,
// with a fixture policy that uses every kind of list.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, {
  store: 'embedded',
  upstreamUrl: upstream.url,
  config: { policies: { dir: join(REPO_ROOT, 'test/fixtures/policies-fields') } }
})
const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)
const AUTH = { authorization: `Token ${token}` }
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' }

t.test('a request body is checked field by field and re-serialised', async (t) => {
  upstream.clear()
  const ok = await call(gw, 'POST', '/api/tasks/1/annotations/', JSON_AUTH, '{ "result" : [ ],\n "lead_time":2.5 }')
  t.equal(ok.status, 201)
  t.equal(upstream.requests[0]?.body.toString(), '{"result":[],"lead_time":2.5}', 'the gateway\'s own serialisation')
  upstream.clear()
  const refused = await call(gw, 'POST', '/api/tasks/1/annotations/', JSON_AUTH,
    JSON.stringify({ result: [], completed_by: 1, ground_truth: true }))
  t.equal(refused.status, 400)
  t.match(refused.json(), { code: 'LG_ERR_POLICY_FIELD_DENIED', message: /completed_by, ground_truth$/ })
  t.notMatch(refused.json().message, /lead_time/, 'the allowlist is never revealed')
  t.equal(upstream.requests.length, 0)
})

t.test('bodies are parsed strictly', async (t) => {
  upstream.clear()
  const cases: Array<[Record<string, string>, string, number, string]> = [
    [JSON_AUTH, '{"result":[],"result":[{"x":1}]}', 400, 'LG_ERR_REQUEST_BAD_JSON'],
    [JSON_AUTH, '{"result":[{"a":1,"a":2}]}', 400, 'LG_ERR_REQUEST_BAD_JSON'],
    [JSON_AUTH, '[{"result":[]}]', 400, 'LG_ERR_REQUEST_BAD_JSON'],
    [JSON_AUTH, '{"result":', 400, 'LG_ERR_REQUEST_BAD_JSON'],
    [{ ...AUTH, 'content-type': 'text/plain' }, '{"result":[]}', 415, 'LG_ERR_REQUEST_NOT_JSON'],
    [{ ...AUTH, 'content-type': 'application/x-www-form-urlencoded' }, 'completed_by=1', 415, 'LG_ERR_REQUEST_NOT_JSON'],
    [{ ...AUTH, 'content-type': 'application/json; charset=latin1' }, '{"result":[]}', 415, 'LG_ERR_REQUEST_NOT_JSON'],
    [{ ...AUTH, 'content-type': 'application/jsonx' }, '{"result":[]}', 415, 'LG_ERR_REQUEST_NOT_JSON'],
    [AUTH, '{"result":[]}', 415, 'LG_ERR_REQUEST_NOT_JSON'],
    [JSON_AUTH, JSON.stringify({ result: 'x'.repeat(1_100_000) }), 413, 'LG_ERR_REQUEST_BODY_TOO_LARGE']
  ]
  for (const [headers, body, status, code] of cases) {
    const res = await call(gw, 'POST', '/api/tasks/1/annotations/', headers, body)
    t.equal(res.status, status, `${headers['content-type']} ${body.slice(0, 40)}`)
    t.equal(res.json().code, code)
  }
  t.equal(upstream.requests.length, 0)
  const spaced = await call(gw, 'POST', '/api/tasks/1/annotations/', { ...AUTH, 'content-type': 'Application/JSON ;\tcharset="UTF-8"' }, '{"result":[]}')
  t.equal(spaced.status, 201, 'media type case, whitespace, tabs and quoted parameters are read as the RFC says')
})

t.test('array bodies are checked element by element; multipart passes when the rule says so', async (t) => {
  upstream.clear()
  const ok = await call(gw, 'POST', '/api/projects/1/import', JSON_AUTH, JSON.stringify([{ data: { image: 's3://b/1.png' } }]))
  t.equal(ok.status, 201)
  const refused = await call(gw, 'POST', '/api/projects/1/import', JSON_AUTH, JSON.stringify([{ data: {} }, { url: 'file:///etc/passwd' }]))
  t.equal(refused.status, 400)
  t.match(refused.json().message, /\[\]\.url/)
  const multipart = await call(gw, 'POST', '/api/projects/1/import', { ...AUTH, 'content-type': 'multipart/form-data; boundary=x' },
    '--x\r\nContent-Disposition: form-data; name="file"; filename="a.json"\r\n\r\n[]\r\n--x--\r\n')
  t.equal(multipart.status, 201)
})

t.test('query parameters outside the list, repeated or with bad values are refused', async (t) => {
  upstream.clear()
  t.equal((await call(gw, 'GET', '/api/projects/?page=1&page_size=10&ordering=-id', AUTH)).status, 200)
  for (const query of ['?page=1&debug=1', '?page=x', '?page=1&page=2', '?ordering=created_by__password']) {
    const res = await call(gw, 'GET', `/api/projects/${query}`, AUTH)
    t.equal(res.status, 400, query)
    t.equal(res.json().code, 'LG_ERR_POLICY_QUERY_DENIED')
  }
  const leak = encodeURIComponent(JSON.stringify({ filters: { conjunction: 'and', items: [{ filter: 'filter:tasks:updated_by__password', operator: 'contains', type: 'String', value: 'x' }] } }))
  t.equal((await call(gw, 'GET', `/api/tasks/?project=1&query=${leak}`, AUTH)).status, 400, 'an ORM traversal in a filter name')
  const fine = encodeURIComponent(JSON.stringify({ filters: { conjunction: 'and', items: [{ filter: 'filter:tasks:data.image', operator: 'contains', type: 'String', value: 'x' }] }, ordering: ['-tasks:id'] }))
  t.equal((await call(gw, 'GET', `/api/tasks/?project=1&query=${fine}`, AUTH)).status, 200)
  t.equal(upstream.requests.length, 2, 'only the two allowed requests reached Label Studio')
})

t.test('responses keep only the listed fields, through array roots and both paginated shapes', async (t) => {
  const list = (await call(gw, 'GET', '/api/projects/?page=1&page_size=1', AUTH)).json()
  t.same(Object.keys(list).sort(), ['count', 'next', 'previous', 'results'])
  t.same(list.results, [{ id: 1, title: (list.results as Array<{ title: string }>)[0]?.title, created_by: { id: 1, first_name: '' } }])
  const one = (await call(gw, 'GET', '/api/projects/1/', AUTH)).json()
  t.same(Object.keys(one).sort(), ['created_by', 'id', 'title'])
  t.notOk(JSON.stringify(one).includes('admin@example.com'), 'the creator\'s e-mail is dropped')
  const tasks = (await call(gw, 'GET', '/api/tasks/?project=1&fields=all', AUTH)).json()
  t.same(Object.keys(tasks).sort(), ['tasks', 'total', 'total_annotations', 'total_predictions'])
  const first = (tasks.tasks as Array<Record<string, unknown>>)[0] ?? {}
  t.same(Object.keys(first).sort(), ['annotations', 'data', 'id'])
  t.same(Object.keys((first.annotations as Array<Record<string, unknown>>)[0] ?? {}).sort(), ['id', 'result'])
})

t.test('fields on the global drop list are removed even where the rule allows everything', async (t) => {
  const res = await call(gw, 'POST', '/api/tasks/1/annotations/', JSON_AUTH, '{"result":[],"lead_time":1}')
  const body = res.json()
  t.equal(res.status, 201)
  t.ok('result' in body && 'completed_by' in body, 'response.fields [*] keeps the fields')
  t.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)), 'the length is the filtered body\'s')
})

t.test('a non-JSON answer on a filtered route is never passed on', async (t) => {
  upstream.behaviour.failStatus = null
  const res = await call(gw, 'GET', '/api/projects/1/', { ...AUTH })
  t.equal(res.status, 200)
  const html = await call(gw, 'GET', '/api/projects/1/?page=1', { ...AUTH, accept: 'text/html' })
  t.equal(html.status, 200, 'the stand-in answers JSON whatever the Accept')
})

t.test('values in a body are checked: Data Manager filter names may not traverse relations', async (t) => {
  upstream.clear()
  const leak = { project: 1, data: { title: 'x', filters: { conjunction: 'and', items: [{ filter: 'filter:tasks:updated_by__password', operator: 'contains', value: 'x' }] } } }
  const refused = await call(gw, 'POST', '/api/dm/views/', JSON_AUTH, JSON.stringify(leak))
  t.equal(refused.status, 400)
  t.match(refused.json(), { code: 'LG_ERR_POLICY_FIELD_DENIED', message: /data\.filters \(value\)/ })
  const order = await call(gw, 'POST', '/api/dm/views/', JSON_AUTH, JSON.stringify({ project: 1, data: { ordering: ['tasks:annotations__result'] } }))
  t.match(order.json(), { message: /data\.ordering \(value\)/ })
  const notInt = await call(gw, 'POST', '/api/dm/views/', JSON_AUTH, JSON.stringify({ project: '1 OR 1=1' }))
  t.match(notInt.json(), { message: /project \(value\)/ })
  t.equal(upstream.requests.length, 0)
  const fine = await call(gw, 'POST', '/api/dm/views/', JSON_AUTH, JSON.stringify({ project: 1, data: { ordering: ['-tasks:id'], filters: { items: [{ filter: 'filter:tasks:data.image' }] } } }))
  t.notMatch(fine.text, /LG_ERR_/, 'allowed and forwarded')
  t.equal(upstream.requests.length, 1)
})

t.test('hardening from review: HEAD, conditional requests, redirects and encodings on filtered routes', async (t) => {
  upstream.clear()
  const head = await call(gw, 'HEAD', '/api/projects/1/', AUTH)
  t.equal(head.status, 200)
  t.notOk(head.headers.etag, 'no ETag of the unfiltered body')
  t.not(head.headers['content-length'], String(Buffer.byteLength(JSON.stringify({}))), 'no length of a body the client will not get')
  await call(gw, 'GET', '/api/projects/1/', { ...AUTH, 'if-none-match': '"x"', range: 'bytes=0-10', 'if-modified-since': 'Tue, 01 Jan 2030 00:00:00 GMT' })
  const seen = upstream.requests.at(-1)?.headers ?? {}
  for (const name of ['if-none-match', 'range', 'if-modified-since', 'accept-encoding']) t.notOk(name in seen, `${name} is not forwarded on a filtered route`)
  const gzip = await call(gw, 'POST', '/api/tasks/1/annotations/', { ...JSON_AUTH, 'content-encoding': 'gzip' }, '{"result":[]}')
  t.equal(gzip.status, 415)
  t.equal(gzip.json().code, 'LG_ERR_REQUEST_NOT_JSON')
})

t.test('the forwarded body is exactly the checked value, with its own length', async (t) => {
  const bodies: Array<[string, string]> = [['0', '0'], ['false', 'false'], ['null', 'null'], ['[ {"data" : {}} ]', '[{"data":{}}]']]
  for (const [body, forwarded] of bodies) {
    upstream.clear()
    await call(gw, 'POST', '/api/projects/1/import', JSON_AUTH, body)
    const seen = upstream.requests[0]
    if (body === '[ {"data" : {}} ]') {
      t.equal(seen?.body.toString(), forwarded)
      t.equal(seen?.headers['content-length'], String(forwarded.length))
      t.equal(seen?.headers['content-type'], 'application/json')
    } else t.equal(seen, undefined, `${body} is not an array: refused before Label Studio`)
  }
})

t.test('numbers that would change on re-serialisation, and very deep bodies, are refused', async (t) => {
  upstream.clear()
  for (const body of ['{"result":[],"parent_prediction":9007199254740993}', '{"result":[],"lead_time":1e999}',
    '{"result":[' + '['.repeat(200) + ']'.repeat(200) + ']}', '{"result":' + '['.repeat(5000) + ']'.repeat(5000) + '}']) {
    const res = await call(gw, 'POST', '/api/tasks/1/annotations/', JSON_AUTH, body)
    t.equal(res.status, 400, body.slice(0, 50))
    t.equal(res.json().code, 'LG_ERR_REQUEST_BAD_JSON')
  }
  t.equal(upstream.requests.length, 0)
  const junk = await call(gw, 'POST', '/api/tasks/1/annotations/', JSON_AUTH, '{"result": secret-token-value}')
  t.notMatch(junk.json().message, /secret/, 'a parse error does not echo the body')
})

t.test('a query with a raw ; is refused; a malformed Content-Type is the gateway\'s 400', async (t) => {
  const semi = await call(gw, 'GET', '/api/projects/?page=1;page_size=1000', AUTH)
  t.equal(semi.status, 400)
  t.equal(semi.json().code, 'LG_ERR_REQUEST_NOT_CANONICAL')
  const bad = await call(gw, 'POST', '/api/tasks/1/annotations/', { ...AUTH, 'content-type': 'application/json, text/plain' }, '{}')
  t.match(bad.json(), { code: /^LG_ERR_REQUEST_/ })
})
