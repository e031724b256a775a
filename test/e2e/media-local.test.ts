import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startTestGateway } from '../support/gateway.js'
import { tempDir } from '../support/tmp.js'
import { localFilesPath, mediaClient } from '../support/media.js'

// Local-files storage and uploads, served by the gateway from folders mounted for it: a path must
// stay inside its root once `..` and symbolic links are resolved, and belong to a project the
// caller may read. Label Studio is never asked for these files.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())

const dir = tempDir(t, 'labelgate-media-')
const files = join(dir, 'files')
const uploads = join(dir, 'uploads')
const IMAGE = randomBytes(1000)
for (const folder of ['datasets/p3/sub', 'datasets/p4', 'unassigned']) mkdirSync(join(files, folder), { recursive: true })
for (const project of ['3', '4']) mkdirSync(join(uploads, project), { recursive: true })
writeFileSync(join(files, 'datasets/p3/sub/img 1.png'), IMAGE)
writeFileSync(join(files, 'datasets/p3/page.html'), '<script>alert(1)</script>')
writeFileSync(join(files, 'datasets/p4/other.png'), randomBytes(10))
writeFileSync(join(files, 'unassigned/loose.png'), randomBytes(10))
writeFileSync(join(dir, 'outside.txt'), 'outside the root')
symlinkSync(join(files, 'datasets/p4/other.png'), join(files, 'datasets/p3/to-p4.png'))
symlinkSync(join(dir, 'outside.txt'), join(files, 'datasets/p3/to-outside.txt'))
symlinkSync(join(files, 'datasets/p3/sub/img 1.png'), join(files, 'datasets/p3/alias.png'))
writeFileSync(join(uploads, '3/upload.png'), IMAGE)
writeFileSync(join(uploads, '4/upload.png'), randomBytes(10))
symlinkSync(join(uploads, '4/upload.png'), join(uploads, '3/to-4.png'))

const storage = {
  local_files_root: files,
  uploads_root: uploads,
  backends: [
    { name: 'p3', type: 'local', path: join(files, 'datasets/p3'), projects: [3] },
    { name: 'p4', type: 'local', path: join(files, 'datasets/p4'), projects: [4] }
  ]
}
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url, config: { storage } })
const AUTH = { authorization: `Token ${await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token, [], '3')}` }
const MANAGER = { authorization: `Token ${await gw.issueToken(ADMIN.email, 'manager', ADMIN.token)}` }

const get = mediaClient(gw)
const call = async (path: string, headers: Record<string, string> = {}, method = 'GET') => await get(method, path, headers)
const local = localFilesPath

t.test('a file of a project\'s local storage, with ranges and revalidation', async (t) => {
  upstream.clear()
  const whole = await call(local('datasets/p3/sub/img 1.png'), AUTH)
  t.equal(whole.status, 200)
  t.same(whole.raw, IMAGE)
  t.equal(whole.headers['content-type'], 'image/png')
  t.equal(whole.headers['cache-control'], 'private, no-cache')
  t.match(whole.headers['content-security-policy'], /sandbox/)
  const part = await call(local('datasets/p3/sub/img 1.png'), { ...AUTH, range: 'bytes=-10' })
  t.equal(part.status, 206)
  t.same(part.raw, IMAGE.subarray(990))
  t.equal(part.headers['content-range'], 'bytes 990-999/1000')
  const again = await call(local('datasets/p3/sub/img 1.png'), { ...AUTH, 'if-none-match': whole.headers.etag as string })
  t.equal(again.status, 304)
  t.equal((await call(local('datasets/p3/alias.png'), AUTH)).status, 200, 'a link that stays inside the folder')
  t.equal((await call(local('/datasets/p3/sub/img 1.png'), AUTH)).status, 200, 'a leading slash is still below the root')
  t.equal((await call(local('datasets/p3/sub/img 1.png'), AUTH, 'HEAD')).headers['content-length'], '1000')
  const page = await call(local('datasets/p3/page.html'), AUTH)
  t.equal(page.headers['content-disposition'], 'attachment')
  t.same(upstream.requests, [], 'Label Studio is not asked')
})

t.test('paths that leave the caller\'s folders are refused', async (t) => {
  const cases: Array<[string, string, number, string]> = [
    ['another project\'s folder', 'datasets/p4/other.png', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['.. into another project\'s folder', 'datasets/p3/../p4/other.png', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['a link into another project\'s folder', 'datasets/p3/to-p4.png', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['a link out of the root', 'datasets/p3/to-outside.txt', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['.. out of the root', '../outside.txt', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['deeper .. out of the root', 'datasets/p3/../../../outside.txt', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['a file of no backend', 'unassigned/loose.png', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['a missing file of another project\'s folder: the same answer', 'datasets/p4/missing.png', 403, 'LG_ERR_MEDIA_NO_BACKEND'],
    ['a missing file of the caller\'s folder', 'datasets/p3/missing.png', 404, 'LG_ERR_MEDIA_NOT_FOUND'],
    ['an encoded dot segment stays a name', 'datasets/p3/%2e%2e/p4/other.png', 404, 'LG_ERR_MEDIA_NOT_FOUND'],
    ['a backslash', 'datasets\\p3\\sub\\img 1.png', 400, 'LG_ERR_MEDIA_BAD_URI'],
    ['a NUL', 'datasets/p3/sub/img 1.png\u0000.txt', 400, 'LG_ERR_MEDIA_BAD_URI'],
    ['a folder', 'datasets/p3/sub', 404, 'LG_ERR_MEDIA_NOT_FOUND'],
    ['nothing', '', 400, 'LG_ERR_MEDIA_BAD_URI']
  ]
  for (const [name, path, status, code] of cases) {
    const res = await call(local(path), AUTH)
    t.equal(res.status, status, name)
    t.equal(res.code(), code, name)
  }
  const twice = await call('/data/local-files/?d=datasets/p3/sub/a.png&d=datasets/p4/other.png', AUTH)
  t.equal(twice.status, 400, 'one d only')
  t.equal((await call(local('datasets/p4/other.png'), MANAGER)).status, 200, 'a manager reaches every project\'s folder')
  t.equal((await call(local('unassigned/loose.png'), MANAGER)).status, 403, 'but only folders a backend serves')
})

t.test('uploads are served from uploads_root, inside the project\'s folder', async (t) => {
  upstream.clear()
  const own = await call('/data/upload/3/upload.png', AUTH)
  t.equal(own.status, 200)
  t.same(own.raw, IMAGE)
  t.same(upstream.requests.filter((r) => r.headers['x-labelgate-lookup'] === undefined), [], 'not forwarded')
  const other = await call('/data/upload/4/upload.png', AUTH)
  t.equal(other.status, 404, 'another project, as the annotator\'s role answers')
  t.equal(other.code(), 'LG_ERR_PROJECT_NOT_FOUND')
  const linked = await call('/data/upload/3/to-4.png', AUTH)
  t.equal(linked.status, 403, 'a link out of the project\'s folder')
  t.equal((await call('/data/upload/3/missing.png', AUTH)).status, 404)
  t.equal((await call('/data/upload/4/upload.png', MANAGER)).status, 200)
})

t.test('without a credential, nothing is read', async (t) => {
  t.equal((await call(local('datasets/p3/sub/img 1.png'))).status, 401)
  t.equal((await call('/data/upload/3/upload.png')).status, 401)
})

t.test('a path swapped for a link between the check and the open is not followed', async (t) => {
  // Whoever can write into a served folder swaps race.png between a regular file and a link to a
  // file outside the root, as fast as it can, while the annotator asks for it.
  const target = join(files, 'datasets/p3/race.png')
  writeFileSync(target, 'INSIDE')
  const swapper = spawn(process.execPath, ['-e', `
    const fs = require('fs'); const p = ${JSON.stringify(target)}; const f = p + '.f', l = p + '.l'
    const end = Date.now() + 4000
    while (Date.now() < end) {
      try { fs.writeFileSync(f, 'INSIDE'); fs.renameSync(f, p); fs.symlinkSync(${JSON.stringify(join(dir, 'outside.txt'))}, l); fs.renameSync(l, p) } catch {}
    }`], { stdio: 'ignore' })
  const exited = once(swapper, 'exit')
  let served = 0
  let leaked = 0
  const deadline = Date.now() + 3000
  while (Date.now() < deadline) {
    const answers = await Promise.all(Array.from({ length: 10 }, async () => await call(local('datasets/p3/race.png'), AUTH)))
    for (const res of answers) {
      if (res.status === 200) served++
      if (res.raw.toString().includes('outside')) leaked++
    }
  }
  swapper.kill()
  await exited
  t.ok(served > 0, `served ${served} times while it was a regular file`)
  t.equal(leaked, 0, 'never the file outside the root')
})
