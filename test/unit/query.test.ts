import t from 'tap'
import { compileQuerySpec, refusedParams, type QuerySpec } from '../../src/policy/query.js'

function specs (raw: Record<string, Parameters<typeof compileQuerySpec>[0]>): Map<string, QuerySpec> {
  return new Map(Object.entries(raw).map(([k, v]) => {
    const spec = compileQuerySpec(v)
    if ('error' in spec) throw new Error(spec.error)
    return [k, spec]
  }))
}

t.test('query parameters: names, repeats and values', async (t) => {
  const allowed = specs({ page: 'int', flag: 'bool', search: 'any', fields: ['all'], view: { pattern: '[a-z]{1,8}' }, query: 'dm-filters' })
  t.same(refusedParams('', allowed), [])
  t.same(refusedParams('page=2&flag=true&search=a+b&fields=all&view=grid', allowed), [])
  t.same(refusedParams('page=2&debug=1', allowed), ['debug'])
  t.same(refusedParams('page=1&page=2', allowed), ['page (repeated)'])
  t.same(refusedParams('page=-1&flag=maybe&fields=some&view=Grid1', allowed), ['page (value)', 'flag (value)', 'fields (value)', 'view (value)'])
  t.same(refusedParams('%70age=1', allowed), [], 'names are compared decoded, as Django reads them')
})

t.test('Data Manager filters may not traverse relations', async (t) => {
  const allowed = specs({ query: 'dm-filters' })
  const q = (value: unknown): string => `query=${encodeURIComponent(JSON.stringify(value))}`
  t.same(refusedParams(q({ filters: { conjunction: 'and', items: [{ filter: 'filter:tasks:completed_at', operator: 'less', value: 'x' }] } }), allowed), [])
  t.same(refusedParams(q({ filters: { items: [{ filter: 'filter:tasks:data.image' }] }, ordering: ['-tasks:id'], selectedItems: { all: true } }), allowed), [])
  for (const bad of [
    { filters: { items: [{ filter: 'filter:tasks:updated_by__password' }] } },
    { filters: { items: [{ filter: 'filter:users:email' }] } },
    { ordering: ['tasks:annotations__completed_by__email'] },
    { filters: { items: [{ filter: 'filter:tasks:data.a__b' }] } },
    'not an object', [1]
  ]) t.same(refusedParams(q(bad), allowed), ['query (value)'], JSON.stringify(bad))
  t.same(refusedParams('query=%7Bnot-json', allowed), ['query (value)'])
})

t.test('specs that do not compile say why', async (t) => {
  t.match(compileQuerySpec('integer'), { error: /must be one of int, bool, any, dm-filters/ })
  t.match(compileQuerySpec({ pattern: '(' }), { error: /pattern does not compile/ })
})

t.test('a Data Manager query is checked as Label Studio reads it: percent-decoded once more', async (t) => {
  const allowed = specs({ query: 'dm-filters', selectedItems: 'any' })
  // %2565 arrives as %65 after the first decoding; Label Studio unquotes again and reads "filter".
  const disguisedKey = '{"filters":{"items":[{"filt%65r":"filter:tasks:updated_by__password"}]},"orderin%67":["tasks:updated_by__password"]}'
  t.same(refusedParams(`query=${encodeURIComponent(disguisedKey)}`, allowed), ['query (value)'])
  const smuggled = '{"a":"%22,%22filters%22:{%22items%22:[{%22filter%22:%22filter:tasks:updated_by__password%22}]},%22b%22:%22"}'
  t.same(refusedParams(`query=${encodeURIComponent(smuggled)}`, allowed), ['query (value)'])
  const plain = '{"filters":{"items":[{"filter":"filter:tasks:data.text","value":"50%25 off"}]}}'
  t.same(refusedParams(`query=${encodeURIComponent(plain)}`, allowed), [], 'an encoded % in a filter value is fine')
})
