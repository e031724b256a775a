import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { loadPolicies } from '../../src/policy/load.js'
import { evaluate } from '../../src/policy/evaluate.js'
import { matchTemplate, parseTemplate, splitPath, type PathTemplate } from '../../src/policy/template.js'
import { REPO_ROOT } from '../support/tmp.js'

const POLICIES = join(REPO_ROOT, 'policies')

function template (source: string): PathTemplate {
  const parsed = parseTemplate(source)
  if ('error' in parsed) throw new Error(parsed.error)
  return parsed
}

t.test('templates match one segment per parameter, the rest with a final **, trailing slash ignored', async (t) => {
  t.same(matchTemplate(template('/api/projects/{id}/'), splitPath('/api/projects/3')), { id: '3' })
  t.same(matchTemplate(template('/api/projects/{id}'), splitPath('/api/projects/3/')), { id: '3' })
  t.equal(matchTemplate(template('/api/projects/{id}/'), splitPath('/api/projects/3/tasks/')), null)
  t.equal(matchTemplate(template('/api/projects/{id}/'), splitPath('/api/projects/')), null)
  t.same(matchTemplate(template('/static/**'), splitPath('/static/js/app.js')), {})
  t.equal(matchTemplate(template('/static/**'), splitPath('/static')), null, '** needs at least one segment')
  t.equal(matchTemplate(template('/static/**'), splitPath('/static../x')), null)
  t.same(matchTemplate(template('/'), splitPath('/')), {})
  t.equal(matchTemplate(template('/api/projects/'), splitPath('/api/Projects/')), null, 'case matters')
  for (const bad of ['api/x', '/a//b', '/a/**/b', '/a/{id}/{id}', '/a/{Id}', '/a/../b', '/a/%2e', '/a/b{c}', '/a;b']) {
    t.ok('error' in parseTemplate(bad), `${bad} is refused`)
  }
})

t.test('the shipped policies: deny by default, HEAD where GET, most specific rule reported', async (t) => {
  const policies = loadPolicies(POLICIES)
  t.same([...policies.roles.keys()].sort(), ['administrator', 'annotator', 'anonymous', 'manager', 'owner', 'reviewer'])
  t.match(evaluate(policies, 'annotator', 'GET', '/api/projects/3/'), { granted: true, route: '/api/projects/{project:int}/', rule: { id: 'projects-read' } })
  t.match(evaluate(policies, 'annotator', 'HEAD', '/api/projects/3/'), { granted: true })
  t.match(evaluate(policies, 'annotator', 'DELETE', '/api/projects/3/'), { granted: false, reason: 'method-not-allowed' })
  t.match(evaluate(policies, 'annotator', 'GET', '/api/storages/s3/'), { granted: false, reason: 'no-rule' })
  t.match(evaluate(policies, 'annotator', 'OPTIONS', '/api/projects/'), { granted: false })
  t.match(evaluate(policies, 'nobody', 'GET', '/'), { granted: false, reason: 'unknown-role' })
  t.match(evaluate(policies, null, 'GET', '/'), { granted: false, reason: 'no-role' })
  t.match(evaluate(policies, 'administrator', 'DELETE', '/api/projects/3/'), { granted: true, route: '/api/projects/{id:int}/' })
  for (const closed of ['/admin/', '/admin/auth/user/', '/django-rq/queues/', '/trigger500/', '/metrics/', '/feature-flags/',
    '/swagger.json', '/swagger/', '/docs/api/', '/api-auth/login/', '/projects/upload-example/']) {
    for (const role of ['owner', 'administrator', 'manager', 'reviewer', 'annotator', 'anonymous']) {
      t.match(evaluate(policies, role, 'GET', closed), { granted: false }, `${closed} is closed to ${role}`)
    }
  }
})

t.test('every path template in policies/ names a real Label Studio route', async (t) => {
  const read = (file: string): Array<{ path: string }> => (parse(readFileSync(file, 'utf8')) as { routes: Array<{ path: string }> }).routes
  const routes = [...read(join(REPO_ROOT, '../shared/labelstudio/routes.yaml')), ...read(join(REPO_ROOT, 'test/fixtures/label-studio-routes-extra.yaml'))]
  const shapes = routes.map((r) => splitPath(r.path).map((s) => /^\{.*\}$/.test(s) ? '{}' : s))
  const policies = loadPolicies(POLICIES)
  for (const role of policies.roles.values()) {
    for (const rule of role.rules) {
      for (const tpl of rule.templates) {
        const mine = tpl.segments.map((s) => s.kind === 'literal' ? s.text : s.kind === 'param' ? '{}' : '**')
        const known = shapes.some((shape) => {
          const rest = mine.indexOf('**')
          if (rest !== -1) return shape.slice(0, rest).join('/') === mine.slice(0, rest).join('/') && shape.length >= rest
          return shape.length === mine.length && shape.every((s, i) => s === mine[i])
        })
        t.ok(known, `${role.name}/${rule.id}: ${tpl.source}`)
      }
    }
  }
})

t.test('policy mistakes are all reported with file, line and column', async (t) => {
  const dir = t.testdir({
    'annotator.yaml': [
      'role: annotator',
      'description: x',
      'rules:',
      '  - id: a',
      '    methods: [GET, FETCH]',
      '    paths:',
      '      - /api/x/{id}/{id}',
      '  - id: a',
      '    methods: [GET]',
      '    paths: [/api/tasks/{id}]',
      '    colour: red',
      ''
    ].join('\n'),
    'reviewer.yaml': 'role: reviewer\ndescription: y\nrules:\n  - id: b\n    methods: [GET]\n    paths:\n      - /api/a/\n      - /api/a\n',
    'manager.yaml': 'role: boss\ndescription: z\n'
  })
  const err = (() => { try { loadPolicies(dir); return null } catch (e) { return e as Error & { problems: Array<Record<string, unknown>> } } })()
  t.ok(err, 'the set is refused')
  const messages = (err?.message ?? '').split('\n')
  const find = (re: RegExp): boolean => messages.some((m) => re.test(m))
  t.ok(find(/annotator\.yaml:10:\d+: .*quote a value holding \{ \} or \[ \]/), 'a flow mapping in a [ ] list is explained')
  t.ok(find(/manager\.yaml:1:7 \/role: the role "boss" must be in a file named boss\.yaml/), 'file name and role agree')
  t.ok(find(/reviewer\.yaml:8:9 \/rules\/0\/paths\/1: \/api\/a is listed twice in rule "b"/), 'a duplicate template')
  mkdirSync(join(dir, 'fixed'))
  writeFileSync(join(dir, 'fixed/annotator.yaml'), [
    'role: annotator', 'description: x', 'rules:', '  - id: a', '    methods: [GET, FETCH]', '    paths:',
    '      - /api/x/{id}/{id}', '  - id: a', '    methods: [GET]', '    paths:', '      - /api/tasks/{id}', '    colour: red', ''
  ].join('\n'))
  const second = (() => { try { loadPolicies(join(dir, 'fixed')); return '' } catch (e) { return (e as Error).message } })()
  t.match(second, /annotator\.yaml:5:20 \/rules\/0\/methods\/1: must be one of GET, HEAD, POST, PUT, PATCH, DELETE/)
  t.match(second, /annotator\.yaml:12:5 \/rules\/1\/colour: unknown option "colour"/)
  t.match(second, /annotator\.yaml:7:9 \/rules\/0\/paths\/0: bad path template/, 'semantic problems come in the same run')
  t.match(second, /annotator\.yaml:8:9 \/rules\/1\/id: rule id "a" is used twice/)
})

t.test('semantic policy problems: bad templates and duplicate rule ids', async (t) => {
  const dir = t.testdir({
    'annotator.yaml': 'role: annotator\ndescription: x\nrules:\n  - id: a\n    methods: [GET]\n    paths:\n      - /api/x/{id}/{id}\n  - id: a\n    methods: [POST]\n    paths:\n      - api/y\n'
  })
  const message = (() => { try { loadPolicies(dir); return '' } catch (e) { return (e as Error).message } })()
  t.match(message, /annotator\.yaml:7:9 \/rules\/0\/paths\/0: bad path template "\/api\/x\/\{id\}\/\{id\}": parameter \{id\} appears twice/)
  t.match(message, /annotator\.yaml:8:9 \/rules\/1\/id: rule id "a" is used twice/)
  t.match(message, /annotator\.yaml:11:9 \/rules\/1\/paths\/0: bad path template "api\/y": must start with \//)
})
