import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { runCli } from '../support/gateway.js'
import { makeCertificates, REPO_ROOT, tempDir } from '../support/tmp.js'

// The reviewer's toolkit as a reviewer runs it: check, policy test, policy explain, policy diff.

const FIXTURE = join(REPO_ROOT, 'test/fixtures/policies-fields')

function configFor (t: Parameters<typeof tempDir>[0], policies: string): string {
  const dir = tempDir(t)
  const certs = makeCertificates(join(dir, 'certs'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `tls: { cert: ${certs.cert}, key: ${certs.key} }\nupstream: { url: "http://127.0.0.1:1" }\npolicies: { dir: ${policies} }\n`)
  return file
}

t.test('check reports five different mistakes in one file with five positioned messages', async (t) => {
  const dir = tempDir(t)
  cpSync(FIXTURE, dir, { recursive: true })
  writeFileSync(join(dir, 'annotator.yaml'), [
    'role: annotator',
    'description: five mistakes',
    'rules:',
    '  - id: a',
    '    methods: [GET, FETCH]',
    '    paths:',
    '      - /api/projects/{id}/{id}',
    '  - id: b',
    '    methods: [GET]',
    '    paths:',
    '      - /api/tasks/',
    '    response:',
    '      fields: [id, "data..x"]',
    '    colour: red',
    '  - id: c',
    '    methods: [GET]',
    '    paths:',
    '      - /api/tasks/{id}/',
    '      - /api/**',
    ''
  ].join('\n'))
  const run = await runCli(['check', '--config', configFor(t, dir)], process.env)
  t.equal(run.code, 1)
  const file = join(dir, 'annotator.yaml')
  const expected = [
    `${file}:5:20 /rules/0/methods/1: must be one of GET, HEAD, POST, PUT, PATCH, DELETE`,
    `${file}:7:9 /rules/0/paths/0: bad path template "/api/projects/{id}/{id}": parameter {id} appears twice`,
    `${file}:13:20 /rules/1/response/fields/1: bad field path "data..x": segment "" is neither a name, * nor name[]`,
    `${file}:14:5 /rules/1/colour: unknown option "colour"`,
    `${file}:19:9 /rules/2/paths/1: GET, HEAD /api/** overlaps rule "b" (/api/tasks/): one request must match one rule`
  ]
  for (const line of expected) t.ok(run.stderr.includes(line), line)
})

t.test('policy test runs case files and reports failures with file and line', async (t) => {
  const config = configFor(t, FIXTURE)
  const pass = await runCli(['policy', 'test', join(REPO_ROOT, 'test/fixtures/cases'), '--config', config], process.env)
  t.equal(pass.code, 0, pass.stdout + pass.stderr)
  t.match(pass.stdout, /^4 passed, 0 failed$/m)
  const dir = tempDir(t)
  const cases = join(dir, 'broken.yaml')
  writeFileSync(cases, readFileSync(join(REPO_ROOT, 'test/fixtures/cases/annotator.yaml'), 'utf8')
    .replace('code: LG_ERR_POLICY_DENIED', 'code: LG_ERR_AUTH_MISSING').replace('refused: [completed_by]', 'refused: [ground_truth]'))
  const fail = await runCli(['policy', 'test', cases, '--config', config], process.env)
  t.equal(fail.code, 1)
  t.match(fail.stdout, new RegExp(`FAIL ${cases}:9 completed_by refused\\n\\s+expected refused \\["ground_truth"\\], got \\["completed_by"\\]`))
  t.match(fail.stdout, /FAIL .*broken\.yaml:17 deleting a project is denied\n\s+expected code LG_ERR_AUTH_MISSING, got LG_ERR_POLICY_DENIED/)
  t.match(fail.stdout, /^2 passed, 2 failed$/m)
})

t.test('policy explain names the rule, its file and line, and what the lists do to a body', async (t) => {
  const config = configFor(t, FIXTURE)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'body.json'), '{"result":[],"ground_truth":true}')
  const run = await runCli(['policy', 'explain', '--role', 'annotator', 'POST', '/api/tasks/3/annotations/', '--body', join(dir, 'body.json'), '--config', config], process.env)
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /denied, LG_ERR_POLICY_FIELD_DENIED/)
  t.match(run.stdout, /rule\s+annotate \(.*policies-fields\/annotator\.yaml:29\)/)
  t.match(run.stdout, /refused\s+ground_truth/)
  const allowed = await runCli(['policy', 'explain', '--role', 'annotator', 'GET', '/api/projects/?page=2', '--config', config], process.env)
  t.match(allowed.stdout, /allowed\n\s+route\s+\/api\/projects\/\n\s+rule\s+projects/)
  t.match(allowed.stdout, /response\s+fields id, title, created_by\.id, created_by\.first_name/)
})

t.test('policy diff shows what a change grants and takes away, and exits 1 when it widens', async (t) => {
  const after = tempDir(t)
  cpSync(FIXTURE, after, { recursive: true })
  const file = join(after, 'annotator.yaml')
  writeFileSync(file, readFileSync(file, 'utf8')
    .replace('fields: [result, lead_time, was_cancelled, draft_id, parent_prediction]', 'fields: [result, lead_time, ground_truth]')
    .replace('      fields: [id, title, created_by.id, created_by.first_name]', '      fields: [id, title]')
    .replace('  - id: import\n    methods: [POST]', '  - id: import\n    methods: [POST, PUT]'))
  const widened = await runCli(['policy', 'diff', FIXTURE, after], process.env)
  t.equal(widened.code, 1)
  t.match(widened.stdout, /role annotator \(widened\)/)
  t.match(widened.stdout, /\+ PUT \/api\/projects\/\{id:int\}\/import/)
  t.match(widened.stdout, /~ POST \/api\/tasks\/\{id:int\}\/annotations request fields \+ ground_truth/)
  t.match(widened.stdout, /~ POST \/api\/tasks\/\{id:int\}\/annotations request fields - was_cancelled, draft_id, parent_prediction/)
  t.match(widened.stdout, /~ GET \/api\/projects response fields - created_by\.id, created_by\.first_name/)
  const narrowed = await runCli(['policy', 'diff', after, FIXTURE], process.env)
  t.equal(narrowed.code, 1, 'the way back re-adds fields, which widens')
  const same = await runCli(['policy', 'diff', FIXTURE, FIXTURE], process.env)
  t.equal(same.code, 0)
  t.match(same.stdout, /no access widened/)
})

t.test('explain and diff answer correctly on the shipped policies', async (t) => {
  const shipped = join(REPO_ROOT, 'policies')
  const config = configFor(t, shipped)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'body.json'), '{"result":[],"lead_time":3,"completed_by":9,"ground_truth":true}')
  const explain = await runCli(['policy', 'explain', '--role', 'annotator', 'POST', '/api/tasks/7/annotations/?project=3',
    '--body', join(dir, 'body.json'), '--config', config], process.env)
  t.match(explain.stdout, /denied, LG_ERR_POLICY_FIELD_DENIED/)
  const ruleLine = readFileSync(join(shipped, 'annotator.yaml'), 'utf8').split('\n').indexOf('  - id: annotations-create') + 1
  t.match(explain.stdout, new RegExp(`rule\\s+annotations-create \\(.*policies/annotator\\.yaml:${ruleLine}\\)`))
  t.match(explain.stdout, /refused\s+completed_by, ground_truth/)
  const closed = await runCli(['policy', 'explain', '--role', 'owner', 'GET', '/admin/', '--config', config], process.env)
  t.match(closed.stdout, /denied, LG_ERR_POLICY_DENIED\n\s+reason\s+no-rule/)

  const after = tempDir(t)
  cpSync(shipped, after, { recursive: true })
  const file = join(after, 'annotator.yaml')
  const text = readFileSync(file, 'utf8')
  writeFileSync(file, text.replace('      fields: [result, lead_time, was_cancelled, draft_id, parent_prediction, parent_annotation,',
    '      fields: [result, lead_time, was_cancelled, draft_id, parent_prediction, parent_annotation, ground_truth,'))
  const diff = await runCli(['policy', 'diff', shipped, after], process.env)
  t.equal(diff.code, 1)
  t.match(diff.stdout, /role annotator \(widened\)\n\s+~ POST \/api\/tasks\/\{task:int\}\/annotations request fields \+ ground_truth/)
  t.notMatch(diff.stdout, /role (owner|administrator|manager|reviewer|anonymous)/, 'only the edited role changes')
})

t.test('diff counts loosened specs as widening; check refuses overlaps on HEAD too; policy test refuses to test nothing', async (t) => {
  const after = tempDir(t)
  cpSync(FIXTURE, after, { recursive: true })
  const file = join(after, 'annotator.yaml')
  const text = readFileSync(file, 'utf8')
  const edits: Array<[string, string, RegExp]> = [
    ['      query: dm-filters', '      query: any', /~ GET \/api\/tasks query \+ query="any"/],
    ['      ordering: [id, -id]', '      ordering: [id, -id, created_by__password]', /query \+ ordering=/],
    ['      content_types: [json, multipart]', '      content_types: [json, multipart, form]', /request \+ accepts form/],
    ['        data.filters: dm-filters\n', '', /value checks - data\.filters="dm-filters"/],
    ['        project: int\n', '        project: any\n', /value checks - project="int"/]
  ]
  for (const [from, to, expected] of edits) {
    t.ok(text.includes(from), from)
    writeFileSync(file, text.replace(from, to))
    const run = await runCli(['policy', 'diff', FIXTURE, after], process.env)
    t.equal(run.code, 1, `${from.trim()} -> ${to.trim()} widens`)
    t.match(run.stdout, expected)
  }

  writeFileSync(file, text + '  - id: head-only\n    methods: [HEAD]\n    paths:\n      - /api/projects/{id:int}/\n')
  const check = await runCli(['check', '--config', configFor(t, after)], process.env)
  t.equal(check.code, 1)
  t.match(check.stderr, /HEAD \/api\/projects\/\{id:int\}\/ overlaps rule "projects"/)

  const empty = tempDir(t)
  const none = await runCli(['policy', 'test', empty, '--config', configFor(t, FIXTURE)], process.env)
  t.equal(none.code, 1)
  t.match(none.stderr, /no case files/)
  writeFileSync(join(empty, 'vacuous.yaml'), 'cases:\n  - name: v\n    role: annotator\n    method: GET\n    path: /api/projects/\n    expect: allow\n    response: {}\n')
  const vacuous = await runCli(['policy', 'test', empty, '--config', configFor(t, FIXTURE)], process.env)
  t.equal(vacuous.code, 1)
  t.match(vacuous.stdout, /response needs upstream/)
})

t.test('explain shows where a rule finds its project and how a binding decides; diff sees checks taken away', async (t) => {
  const shipped = join(REPO_ROOT, 'policies')
  const config = configFor(t, shipped)
  const explain = (args: string[]) => runCli(['policy', 'explain', '--role', 'annotator', ...args, '--config', config], process.env)
  const outside = await explain(['GET', '/api/annotations/5/', '--projects', '1', '--object', 'annotation:5=2'])
  t.equal(outside.code, 0)
  t.match(outside.stdout, /denied, LG_ERR_PROJECT_NOT_FOUND/)
  t.match(outside.stdout, /project\s+.*path \{annotation\}/)
  t.match(outside.stdout, /project\s+.*path \{task\}.*; query project \(project\); query taskID \(task\)/)
  t.match(outside.stdout, /checked\s+annotation 5 \(path annotation\) is in project 2 \(--object\)/)
  const inside = await explain(['GET', '/api/annotations/5/?project=1', '--projects', '1,3', '--object', 'annotation:5=3'])
  t.match(inside.stdout, /allowed/)
  t.match(inside.stdout, /checked\s+project 1 \(query project\) is in project 1 \(given\)/)
  const unknown = await explain(['GET', '/api/annotations/5/', '--projects', '1'])
  t.match(unknown.stdout, /annotation 5 \(path annotation\) is in no project the caller can see/)
  const list = await explain(['GET', '/api/projects/', '--projects', '1'])
  t.match(list.stdout, /list\s+items kept for projects 1/)
  t.match((await explain(['GET', '/api/tasks/', '--projects', '1'])).stdout, /denied, LG_ERR_PROJECT_REQUIRED\n\s+reason\s+\?project= or \?view=/)
  t.match((await explain(['GET', '/api/tasks/5/'])).stdout, /allowed/, 'without --projects the caller reaches every project')
  const misuse = await explain(['GET', '/api/tasks/5/', '--object', 'task=5'])
  t.equal(misuse.code, 2)
  t.match(misuse.stderr, /--object task=5: write KIND:ID=PROJECT/)

  const after = tempDir(t)
  cpSync(shipped, after, { recursive: true })
  const reviewer = join(after, 'reviewer.yaml')
  writeFileSync(reviewer, readFileSync(reviewer, 'utf8').replace('      query: { project: project, taskID: task }\n',
    '      query: { project: project }\n      not_ids: [taskID]\n'))
  const annotator = join(after, 'annotator.yaml')
  writeFileSync(annotator, readFileSync(annotator, 'utf8').replace('projects: bound\n', 'projects: all\n'))
  const diff = await runCli(['policy', 'diff', shipped, after], process.env)
  t.equal(diff.code, 1)
  t.match(diff.stdout, /role reviewer \(widened\)\n\s+~ GET \/api\/annotations\/\{annotation:int\} project checks - query taskID \(task\)/)
  t.match(diff.stdout, /~ GET \/api\/tasks\/\{task:int\} project checks: none \(the role is no longer bound to projects\)/)
  t.notMatch(diff.stdout, /GET \/api\/current-user\/whoami project checks/, 'a rule that reaches no project loses nothing')
})

t.test('check refuses a rule of a bound role that does not say where its project is', async (t) => {
  const dir = tempDir(t)
  cpSync(join(REPO_ROOT, 'policies'), dir, { recursive: true })
  const file = join(dir, 'annotator.yaml')
  writeFileSync(file, readFileSync(file, 'utf8') + '  - id: new-route\n    methods: [GET]\n    paths:\n      - /api/projects/{id:int}/summary/\n')
  const run = await runCli(['check', '--config', configFor(t, dir)], process.env)
  t.equal(run.code, 1)
  t.match(run.stderr, /annotator\.yaml:\d+:\d+ \/rules\/\d+\/id: rule "new-route" is in a role bound to projects/)
  t.match(run.stderr, /\{id:int\} in \/api\/projects\/\{id:int\}\/summary\/ names an object the gateway cannot place in a project/)
})
