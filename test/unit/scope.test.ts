import t from 'tap'
import { loadPolicies } from '../../src/policy/load.js'
import {
  keepBoundItems, looksLikeId, narrowedQuery, planScope, projectRefs, type CompiledScope, type ListSpec
} from '../../src/policy/scope.js'
import { parseFieldPath, type FieldSegment } from '../../src/policy/fields.js'

// Project scoping, the pure part: what `check` refuses in a role bound to projects, which ids a
// request carries, and how lists are reduced to the caller's projects.

function problemsOf (dir: string): string {
  try {
    loadPolicies(dir)
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

function bound (rules: string): Record<string, string> {
  return { 'annotator.yaml': `role: annotator\ndescription: x\nprojects: bound\nrules:\n${rules}` }
}

t.test('check refuses a rule of a bound role whose project source cannot be determined', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['no project key',
      '  - id: a\n    methods: [GET]\n    paths: [/api/tasks/]\n',
      /:5:9 \/rules\/0\/id: rule "a" is in a role bound to projects: say where its project comes from/],
    ['an id parameter not named after its kind',
      '  - id: a\n    methods: [GET]\n    paths:\n      - /api/tasks/{id:int}/\n    query: {}\n    project: path\n',
      /\/rules\/0\/paths\/0: \{id:int\} in \/api\/tasks\/\{id:int\}\/ names an object the gateway cannot place/],
    ['an untyped parameter named like an id',
      '  - id: a\n    methods: [GET]\n    paths:\n      - /api/x/{task_pk}/\n    project: none\n',
      /\{task_pk\} in \/api\/x\/\{task_pk\}\/ names an object the gateway cannot place/],
    ['a kind parameter without :int',
      '  - id: a\n    methods: [GET]\n    paths:\n      - /api/tasks/{task}/\n    query: {}\n    project: path\n',
      /\{task\} is an id: write \{task:int\}/],
    ['project: none with a kind parameter',
      '  - id: a\n    methods: [GET]\n    paths:\n      - /api/tasks/{task:int}/\n    project: none\n',
      /project: none, but \{task:int\} in \/api\/tasks\/\{task:int\}\/ is an object of a project/],
    ['project: path without a kind parameter',
      '  - id: a\n    methods: [GET]\n    paths: [/api/x/]\n    query: {}\n    project: path\n',
      /project: path, but no path parameter is named after a kind/],
    ['a sourced rule without a query list',
      '  - id: a\n    methods: [GET]\n    paths:\n      - /api/tasks/{task:int}/\n    project: path\n',
      /rule "a" carries project ids: give it a query list/],
    ['a query source the query list does not have',
      '  - id: a\n    methods: [GET]\n    paths: [/api/tasks/]\n    query: {}\n    project:\n      query: { project: project }\n',
      /query parameter "project" is not in the rule's query list/],
    ['a body source on a rule that streams form bodies',
      '  - id: a\n    methods: [POST]\n    paths: [/api/x/]\n    query: {}\n    request:\n      fields: [task]\n' +
        '      content_types: [json, form]\n    project:\n      body: { task: task }\n',
      /body sources need a request spec that takes JSON only/],
    ['an undeclared query parameter that reads as an id',
      '  - id: a\n    methods: [GET]\n    paths: [/api/tasks/]\n    query: { project: int, taskID: int }\n' +
        '    project:\n      query: { project: project }\n',
      /query parameter "taskID" reads as an id/],
    ['an undeclared body field that reads as an id',
      '  - id: a\n    methods: [POST]\n    paths:\n      - /api/tasks/{task:int}/x\n    query: {}\n' +
        '    request:\n      fields: [result, parent_annotation]\n    project: path\n',
      /body field "parent_annotation" reads as an id/],
    ['a list template that is not one of the paths',
      '  - id: a\n    methods: [GET]\n    paths: [/api/projects/]\n    query: { ids: any }\n    project:\n' +
        '      query: { ids: project }\n      lists:\n        /api/other/: { items: results, field: id }\n',
      /\/api\/other\/ is not one of the rule's paths/],
    ['a narrowing parameter outside the query list',
      '  - id: a\n    methods: [GET]\n    paths: [/api/projects/]\n    query: {}\n    project:\n' +
        '      lists:\n        /api/projects/: { items: results, field: id, narrow: ids }\n',
      /narrow: "ids" is not in the rule's query list/],
    ['a write whose body is forwarded unread',
      '  - id: a\n    methods: [PATCH]\n    paths:\n      - /api/tasks/{task:int}/\n    query: {}\n    project: path\n',
      /\/rules\/0\/methods: rule "a" takes a body: give it JSON-only request fields/],
    ['a write that lets multipart bodies through',
      '  - id: a\n    methods: [POST]\n    paths:\n      - /api/tasks/{task:int}/x\n    query: {}\n    project: path\n' +
        '    request:\n      fields: [result]\n      content_types: [json, multipart]\n',
      /rule "a" takes a body: give it JSON-only request fields/],
    ['an object that names no source',
      '  - id: a\n    methods: [GET]\n    paths: [/api/tasks/]\n    query: { page: int }\n    project: {}\n',
      /\/rules\/0\/project: names no project source/],
    ['not_ids alone, without saying none',
      '  - id: a\n    methods: [GET]\n    paths: [/api/tasks/]\n    query: { page: int }\n    project:\n      not_ids: [x]\n',
      /names no project source/],
    ['a wildcard in the request fields of a bound write',
      '  - id: a\n    methods: [PATCH]\n    paths:\n      - /api/annotations/{annotation:int}/\n    query: {}\n' +
        '    request:\n      fields: [\'*\']\n    project: path\n',
      /body field "\*" lets any key through, ids included/],
    ['a text parameter that is not declared as no id',
      '  - id: a\n    methods: [GET]\n    paths:\n      - /api/projects/{slug}/\n    query: { project: int }\n' +
        '    project:\n      query: { project: project }\n',
      /\{slug\} in \/api\/projects\/\{slug\}\/ names an object the gateway cannot place/],
    ['plural and camelCase id names',
      '  - id: a\n    methods: [GET]\n    paths: [/api/comments/]\n    query: { project: int, projects: any, taskId: int }\n' +
        '    project:\n      query: { project: project }\n',
      /query parameter "projects" reads as an id[\s\S]*query parameter "taskId" reads as an id/],
    ['an unknown kind',
      '  - id: a\n    methods: [GET]\n    paths: [/api/x/]\n    query: { thing: int }\n    project:\n      query: { thing: workspace }\n',
      /\/rules\/0\/project/]
  ]
  for (const [name, rules, expected] of cases) {
    t.match(problemsOf(t.testdir(bound(rules))), expected, name)
  }
})

t.test('check accepts what is declared, and roles that are not bound need no project keys', async (t) => {
  t.equal(problemsOf(t.testdir(bound(
    '  - id: a\n    methods: [POST]\n    paths:\n      - /api/tasks/{task:int}/annotations/\n' +
    '    query: { project: int, taskID: int }\n    request:\n      fields: [result, draft_id, unique_id]\n' +
    '    project:\n      query: { project: project, taskID: task }\n      body: { draft_id: draft }\n      not_ids: [unique_id]\n' +
    '  - id: b\n    methods: [GET]\n    paths:\n      - /api/users/{user:int}/\n    project: none\n' +
    '  - id: c\n    methods: [GET]\n    paths:\n      - /data/avatars/{path}\n    project:\n      none: true\n      not_ids: [path]\n' +
    '  - id: d\n    methods: [GET]\n    paths:\n      - /data/upload/{project:int}/{file}\n    query: {}\n' +
    '    project:\n      not_ids: [file]\n'))), '')
  t.equal(problemsOf(t.testdir({
    'manager.yaml': 'role: manager\ndescription: x\nrules:\n  - id: a\n    methods: [GET]\n    paths:\n      - /api/tasks/{id:int}/\n'
  })), '')
})

const segments = (text: string): FieldSegment[] => parseFieldPath(text) as FieldSegment[]
const scope: CompiledScope = {
  sources: [
    { where: 'query', name: 'project', segments: segments('project'), kind: 'project' },
    { where: 'body', name: 'selectedItems.included[]', segments: segments('selectedItems.included[]'), kind: 'task' }
  ],
  lists: new Map(),
  notIds: [],
  none: false
}

t.test('the ids a request carries', async (t) => {
  t.same(projectRefs(scope, { task: '7', file: 'x' }, 'project=3&page=2', { selectedItems: { included: [7, '8', null] } }), {
    refs: [
      { kind: 'task', id: 7, via: 'path task' },
      { kind: 'project', id: 3, via: 'query project' },
      { kind: 'task', id: 8, via: 'body selectedItems.included[]' }
    ]
  }, 'path, query and body; a numeric string counts; null and repeats do not')
  t.same(projectRefs(scope, {}, 'project=1,2', undefined), {
    refs: [{ kind: 'project', id: 1, via: 'query project' }, { kind: 'project', id: 2, via: 'query project' }]
  }, 'a comma-separated list is checked element by element')
  for (const bad of [1.5, -1, 'abc', {}, [1], true, '1e3', 2 ** 60]) {
    t.match(projectRefs(scope, {}, '', { selectedItems: { included: [bad] } }), { error: /is not an id/ }, JSON.stringify(bad))
  }
  t.match(projectRefs(scope, {}, 'project=x', undefined), { error: /query project is not an id/ })
  t.match(projectRefs(scope, {}, '', { selectedItems: '{"included":[87]}' }), { error: /where an object is expected/ },
    'JSON text that Label Studio would parse')
  t.match(projectRefs(scope, {}, '', { selectedItems: { included: 87 } }), { error: /included is not a list/ })
  t.same(projectRefs(scope, {}, '', [{ selectedItems: { included: [3] } }, { selectedItems: null }]),
    { refs: [{ kind: 'task', id: 3, via: 'body selectedItems.included[]' }] }, 'array bodies element by element')
  const many = Array.from({ length: 501 }, (_, i) => i + 1)
  t.match(projectRefs(scope, {}, '', { selectedItems: { included: many } }), { error: /more than 500 ids/ })
})

t.test('plans: skipped, required, or refs to check', async (t) => {
  const rule = { project: scope, projectsBound: true }
  t.same(planScope({ ...rule, projectsBound: false }, null, {}, '', undefined, [1]), { scoped: false }, 'role not bound')
  t.same(planScope(rule, null, {}, '', undefined, 'all'), { scoped: false }, 'bound to all projects')
  t.match(planScope(rule, '/api/tasks/', {}, '', undefined, [1]), {
    scoped: true, error: 'LG_ERR_PROJECT_REQUIRED', message: '?project= or "selectedItems.included[]" in the body'
  })
  t.match(planScope(rule, '/api/tasks/', {}, 'project=2', undefined, []), { scoped: true, error: 'outside' },
    'a user bound to no project reaches none, lists included')
})

const list: ListSpec = { items: 'results', field: segments('id'), fieldText: 'id', narrow: 'ids' }

t.test('lists keep the items of bound projects, and their counts', async (t) => {
  const page = { count: 3, next: null, previous: null, results: [{ id: 1 }, { id: 2 }, { id: 3 }] }
  t.same(keepBoundItems(page, list, new Set([1, 3])), {
    body: { count: 2, next: null, previous: null, results: [{ id: 1 }, { id: 3 }] }, removed: 1
  })
  t.same(keepBoundItems({ ...page, next: 'http://x/?page=2' }, list, new Set([1])), { error: 'list-counts' },
    'one page of several cannot be corrected')
  t.match(keepBoundItems({ ...page, next: 'http://x/?page=2' }, list, new Set([1, 2, 3])), { removed: 0 },
    'nothing removed: any page passes')
  t.same(keepBoundItems({ results: 'x' }, list, new Set([1])), { error: 'list-shape' })
  t.same(keepBoundItems({ tasks: [{ project: 1 }, { project: 2 }], total: 2, total_annotations: 4 },
    { items: 'tasks', field: segments('project'), fieldText: 'project', narrow: null }, new Set([1])), { error: 'list-counts' },
  'other totals cannot be recounted')
  t.same(keepBoundItems([{ project: 2 }, { project: '1' }, { project: null }], { items: null, field: segments('project'), fieldText: 'project', narrow: null }, new Set([1])),
    { body: [{ project: '1' }], removed: 2 }, 'an array root; an item without a project is removed')
})

t.test('a list is narrowed upstream unless the client narrowed it', async (t) => {
  t.equal(narrowedQuery('page=2', list, new Set([3, 1])), 'page=2&ids=1,3')
  t.equal(narrowedQuery('', list, new Set([1])), 'ids=1')
  t.equal(narrowedQuery('ids=1', list, new Set([1, 3])), 'ids=1', 'the client\'s own ids were checked one by one')
  t.equal(narrowedQuery('page=2', { ...list, narrow: null }, new Set([1])), 'page=2')
})

t.test('names that read as ids', async (t) => {
  for (const name of ['id', 'task', 'project', 'taskID', 'tabID', 'draft_id', 'task_pk', 'ids', 'parent_annotation',
    'annotation__task__project', 'projects', 'tasks', 'taskId', 'projectId', 'ml_backends', 'mlBackend', 'annotation_ids']) {
    t.ok(looksLikeId(name), name)
  }
  for (const name of ['result', 'page', 'lead_time', 'fileuri', 'include', 'title', 'event_key', 'was_cancelled']) {
    t.notOk(looksLikeId(name), name)
  }
})
