import t from 'tap'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startTestGateway } from '../support/gateway.js'
import { tempDir } from '../support/tmp.js'
import { localFilesPath, mediaClient } from '../support/media.js'

// Attacks on local files and uploads served by the gateway: paths that leave their folder, odd
// file types, conditionals, folders that do not exist.

const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())

const dir = tempDir(t, 'labelgate-local-attack-')
const files = join(dir, 'files')
const uploads = join(dir, 'uploads')
for (const folder of ['datasets/p3/sub', 'datasets/p33', 'datasets/p4']) mkdirSync(join(files, folder), { recursive: true })
mkdirSync(join(uploads, '3'), { recursive: true })
const OUTSIDE = 'OUTSIDE-THE-ROOT: a file the gateway can read, such as its own keys'
writeFileSync(join(dir, 'outside.txt'), OUTSIDE)
writeFileSync(join(files, 'datasets/p3/sub/img 1.png'), 'IMG-OF-PROJECT-3')
writeFileSync(join(files, 'datasets/p3/race.png'), 'INSIDE')
writeFileSync(join(files, 'datasets/p33/x.png'), 'P33')
writeFileSync(join(files, 'datasets/p4/x.png'), 'P4')
writeFileSync(join(uploads, '3/u.png'), 'UPLOAD-3')
// An HTML page whose name gives no type, and one whose name has a newline (reached by a link).
writeFileSync(join(files, 'datasets/p3/page'), '<html><script>alert(document.domain)</script></html>')
writeFileSync(join(files, 'datasets/p3/x\n.html'), '<html><script>alert(document.domain)</script></html>')
symlinkSync(join(files, 'datasets/p3/x\n.html'), join(files, 'datasets/p3/nl.html'))
symlinkSync('/dev/zero', join(files, 'datasets/p3/zero.png'))
symlinkSync(join(dir, 'outside.txt'), join(files, 'datasets/p3/out.png'))
symlinkSync(join(files, 'datasets/p4'), join(files, 'datasets/p3/dir-to-p4'))
execFileSync('mkfifo', [join(files, 'datasets/p3/fifo.png')])

const storage = {
  local_files_root: files,
  uploads_root: uploads,
  backends: [
    { name: 'p3', type: 'local', path: join(files, 'datasets/p3'), projects: [3] },
    { name: 'p33', type: 'local', path: join(files, 'datasets/p33'), projects: [4] },
    { name: 'p4', type: 'local', path: join(files, 'datasets/p4'), projects: [4] }
  ]
}
const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url, config: { storage } })
const AUTH = { authorization: `Token ${await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token, [], '3')}` }
const MANAGER = { authorization: `Token ${await gw.issueToken(ADMIN.email, 'manager', ADMIN.token)}` }

const get = mediaClient(gw, null, 5000)
const call = async (path: string, headers: Record<string, string> = {}, method = 'GET') => await get(method, path, headers)
const local = localFilesPath

t.test('d values that leave the caller\'s folder, or name no regular file', async (t) => {
  const cases: Array<[string, number]> = [
    ['/etc/passwd', 403], ['~/x', 403], ['.', 403], ['..', 403], ['../outside.txt', 403],
    ['datasets/p3/../p4/x.png', 403], ['datasets/p3/sub/../../p33/x.png', 403], ['datasets/p33/x.png', 403],
    ['datasets/p3/zero.png', 403], ['datasets/p3/out.png', 403], ['datasets/p3/dir-to-p4/x.png', 403],
    ['datasets/p3/fifo.png', 404], ['datasets/p3/sub', 404], ['datasets/p3', 404], ['datasets/p3/sub/img 1.png/', 404],
    ['datasets/p3/sub/img%201.png', 404], ['datasets/p3/sub/img 1.png\u0000', 400], ['datasets\\p3\\sub\\img 1.png', 400],
    ['datasets/p3/sub/img 1.png\r\nX-Injected: 1', 400], ['a'.repeat(5000), 400]
  ]
  for (const [path, status] of cases) {
    const res = await call(local(path), AUTH)
    t.equal(res.status, status, JSON.stringify(path).slice(0, 60))
    t.notOk(res.text.includes('OUTSIDE') || res.text.includes('P4') || res.text.includes('P33'), 'no other folder\'s bytes')
    t.equal(res.headers['x-injected'], undefined)
  }
  for (const path of ['//datasets/p3/sub/img 1.png', '/datasets/p3/./sub/img 1.png']) {
    const res = await call(local(path), AUTH)
    t.equal(res.status, 200, path)
    t.equal(res.text, 'IMG-OF-PROJECT-3')
  }
  const plus = await call('/data/local-files/?d=datasets/p3/sub/img+1.png', AUTH)
  t.equal(plus.status, 200, '+ is a space, as Django reads a query')
  for (const path of ['/data/upload/3/..', '/data/upload/3/%2e%2e', '/data/upload/3/a%2Fb', '/data/upload/4/x.png', '/data/upload/3/%00']) {
    const res = await call(path, AUTH)
    t.ok(res.status >= 400 && res.status < 500, `${path}: ${res.status}`)
  }
})

t.test('local files evaluate every conditional header as HTTP says', async (t) => {
  const path = local('datasets/p3/sub/img 1.png')
  const first = await call(path, AUTH)
  t.equal((await call(path, { ...AUTH, 'if-match': '"nope"' })).status, 412)
  t.equal((await call(path, { ...AUTH, 'if-unmodified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' })).status, 412)
  t.equal((await call(path, { ...AUTH, 'if-none-match': String(first.headers.etag) })).status, 304)
  const tail = await call(path, { ...AUTH, range: 'bytes=-3' })
  t.equal(tail.status, 206)
  t.equal(tail.text, 'T-3')
})

t.test('a local file whose name gives no type is application/octet-stream, as an attachment', async (t) => {
  // Objects from buckets get application/octet-stream when their type is unknown, and every type
  // but media and text is an attachment. Local files with no extension, or whose real name holds a
  // newline (mime's extension lookup stops at it), get neither header: an HTML page is sent inline.
  for (const name of ['datasets/p3/page', 'datasets/p3/nl.html']) {
    const res = await call(local(name), AUTH)
    t.equal(res.status, 200, name)
    t.ok(res.headers['content-type'] !== undefined, `${name}: a Content-Type is sent`)
    t.equal(res.headers['content-disposition'], 'attachment', `${name}: an unknown type is an attachment`)
  }
})

t.test('an upload path of a project without a folder is 404, and the folder is in no log line', async (t) => {
  const res = await call('/data/upload/999/u.png', MANAGER)
  t.equal(res.status, 404, 'no file there: 404 LG_ERR_MEDIA_NOT_FOUND, as for a missing file in an existing folder')
  t.match(JSON.parse(res.text), { code: 'LG_ERR_MEDIA_NOT_FOUND' })
  const logged = gw.logs.lines.filter((l) => l.includes(uploads))
  t.same(logged, [], 'the uploads folder does not appear in the log')
})
