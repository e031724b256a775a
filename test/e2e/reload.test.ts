import { cpSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { call, startTestGateway } from '../support/gateway.js'
import { makeCertificates, REPO_ROOT, tempDir } from '../support/tmp.js'

// A running gateway picks up edited policies and a renewed certificate without a restart, and keeps
// the last good policy set when an edit is invalid.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]

async function until (check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function servedFingerprint (port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
    socket.on('secureConnect', () => { resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? ''); socket.destroy() })
    socket.on('error', reject)
  })
}

t.test('policies and certificate reload while serving', async (t) => {
  const dir = tempDir(t)
  const policies = join(dir, 'policies')
  cpSync(join(REPO_ROOT, 'test/fixtures/policies-fields'), policies, { recursive: true })
  const upstream = await startLabelStudioStandIn()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url, config: { policies: { dir: policies } } })
  const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)
  const deleteProject = async (): Promise<number> => (await call(gw, 'DELETE', '/api/projects/1/', { authorization: `Token ${token}` })).status
  t.equal(await deleteProject(), 403)

  const file = join(policies, 'annotator.yaml')
  const original = readFileSync(file, 'utf8')
  const edited = original.replace('  - id: projects\n    methods: [GET]', '  - id: projects\n    methods: [GET, DELETE]')
  t.not(edited, original, 'the edit changes the policy')
  const written = Date.now()
  writeFileSync(file, edited)
  await until(async () => await deleteProject() === 204, 'the edited policy')
  const elapsed = Date.now() - written
  t.ok(elapsed < 1000, `an added grant applies without a restart, within a second (${elapsed} ms)`)

  writeFileSync(file, original.replace('role: annotator', 'role: annotator\nbogus: 1'))
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal((await call(gw, 'GET', '/api/projects/2/', { authorization: `Token ${token}` })).status, 200, 'the last good set still serves')
  t.equal(await deleteProject(), 404, 'and still grants DELETE: Label Studio answers that project 1 is gone')
  t.ok(gw.logs.entries().some((e) => /policies not reloaded/.test(String(e.msg))), 'the refusal is logged')

  const before = await servedFingerprint(gw.gateway.port)
  const renewed = makeCertificates(join(dir, 'renewed'))
  const configured = readFileSync(gw.configFile, 'utf8')
  const certFile = /cert: (.*server\.crt)/.exec(configured)?.[1] ?? ''
  const keyFile = /key: (.*server\.key)/.exec(configured)?.[1] ?? ''
  rmSync(keyFile)
  writeFileSync(keyFile, readFileSync(renewed.key))
  writeFileSync(certFile, readFileSync(renewed.cert))
  const expected = new X509Certificate(readFileSync(renewed.cert)).fingerprint256
  t.not(before, expected)
  await until(async () => await servedFingerprint(gw.gateway.port) === expected, 'the renewed certificate')
  t.pass('new connections get the renewed certificate')
})
