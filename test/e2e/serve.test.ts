import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { createServer } from 'node:net'
import t from 'tap'
import { Agent, request } from 'undici'
import { CLI, runCli } from '../support/gateway.js'
import { freePort } from '../support/redis.js'
import { REPO_ROOT, tempDir } from '../support/tmp.js'
import { http, rawRequest } from '../support/raw.js'

// `labelgate serve` as an operator runs it: the shipped example configuration in a fresh folder,
// a development certificate made on first start, HTTPS with TLS 1.2 at least, the redirect port.

async function exampleIn (dir: string): Promise<{ file: string, port: number, redirect: number }> {
  const port = await freePort()
  const redirect = await freePort()
  cpSync(join(REPO_ROOT, 'policies'), join(dir, 'policies'), { recursive: true })
  const text = readFileSync(join(REPO_ROOT, 'gateway.example.yaml'), 'utf8')
    .replace('port: 8443 ', `port: ${port} `).replace('http_redirect_port: 8081', `http_redirect_port: ${redirect}`)
    .replace('host: 0.0.0.0', 'host: 127.0.0.1')
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, text)
  return { file, port, redirect }
}

function serve (file: string): { child: ChildProcess, output: () => string, listening: Promise<void> } {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${output}`)), 15_000)
    const onData = (d: Buffer): void => {
      output += d.toString()
      if (output.includes('labelgate listening')) { clearTimeout(timer); resolve() }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`serve exited:\n${output}`)) })
  })
  return { child, output: () => output, listening }
}

t.test('the example configuration runs as it is, and makes a development certificate', async (t) => {
  const dir = tempDir(t)
  const { file, port, redirect } = await exampleIn(dir)
  const server = serve(file)
  t.teardown(() => { server.child.kill('SIGKILL') })
  await server.listening
  t.match(server.output(), /made a development certificate/)
  const ca = join(dir, 'certs/dev/ca.crt')
  t.ok(existsSync(ca), 'the development CA is there for clients to trust')

  const dispatcher = new Agent({ connect: { ca: readFileSync(ca) } })
  t.teardown(() => dispatcher.close())
  const health = await request(`https://localhost:${port}/-/healthz`, { dispatcher })
  t.equal(health.statusCode, 200)
  t.match(health.headers['strict-transport-security'], /max-age=31536000; includeSubDomains/)
  t.same(await health.body.json(), { status: 'ok' })
  const ready = await request(`https://localhost:${port}/-/readyz`, { dispatcher })
  t.same(await ready.body.json(), { status: 'ready', store: 'embedded' })

  const old = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(ca), servername: 'localhost', maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })
    socket.on('secureConnect', () => { resolve('connected'); socket.destroy() })
    socket.on('error', (err) => resolve(err.message))
  })
  t.not(old, 'connected', 'TLS 1.1 is refused')

  const redirected = await rawRequest(redirect, http('GET /api/projects/?page=2 HTTP/1.1'), { tls: false })
  t.equal(redirected.status, 308)
  t.equal(redirected.headers.location, `https://localhost:${port}/api/projects/?page=2`)

  const token = await runCli(['token', 'create', '--user', 'someone@example.com', '--config', file], process.env)
  t.equal(token.code, 0, 'the CLI works against the embedded store while the gateway runs')
  t.match(token.stderr, /has no role binding yet/)

  server.child.kill('SIGTERM')
  const code = await new Promise((resolve) => server.child.once('exit', resolve))
  t.equal(code, 0, 'a clean shutdown on SIGTERM')
})

t.test('a broken configuration is reported whole, and nothing listens', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, [
    'server:',
    `  port: ${port}`,
    '  colour: blue',
    'tls:',
    '  cert: missing.crt',
    '  key: missing.key',
    'upstream:',
    '  url: ftp://label-studio',
    '  timeouts: { connect: soon }',
    'identity:',
    '  cache_ttl: 5s',
    '  cache_ttl: 6s',
    ''
  ].join('\n'))
  for (const command of ['check', 'serve']) {
    const run = await runCli([command, '--config', file], process.env)
    t.equal(run.code, 1, `${command} exits 1`)
    const lines = run.stderr.split('\n')
    t.ok(lines.some((l) => l.endsWith(`${file}:3:3 /server/colour: unknown option "colour"`)), 'unknown key')
    t.ok(lines.some((l) => l.includes(`${file}:5:9 /tls/cert: file ${join(dir, 'missing.crt')} does not exist`)), 'missing certificate file')
    t.ok(lines.some((l) => l.includes(`${file}:8:8 /upstream/url: must use http:// or https://`)), 'bad URL')
    t.ok(lines.some((l) => l.includes(`${file}:9:24 /upstream/timeouts/connect: must be a duration`)), 'wrong type')
    t.ok(lines.some((l) => l.includes(`${file}:12:3: duplicate key "cache_ttl"`)), 'duplicate key')
  }
  const probe = await rawRequest(port, 'GET / HTTP/1.1\r\n\r\n', { tls: false }).catch((err: Error) => err)
  t.type(probe, Error, 'nothing listens on the configured port')
})

t.test('problems found only against the policies or the network are reported cleanly too', async (t) => {
  const dir = tempDir(t)
  const { file, port } = await exampleIn(dir)
  const text = readFileSync(file, 'utf8')
  writeFileSync(file, text.replace('default_role: null', 'default_role: wizard'))
  const role = await runCli(['check', '--config', file], process.env)
  t.equal(role.code, 1)
  const line = text.split('\n').findIndex((l) => l.includes('default_role:')) + 1
  t.match(role.stderr, new RegExp(`${file}:${line}:\\d+ /identity/default_role: no role "wizard"`))

  writeFileSync(file, text)
  const blocker = createServer().listen(port, '127.0.0.1')
  await new Promise((resolve) => blocker.once('listening', resolve))
  t.teardown(() => blocker.close())
  const busy = await runCli(['serve', '--config', file], process.env)
  t.equal(busy.code, 1)
  t.match(busy.stderr, new RegExp(`labelgate: cannot listen on 127\\.0\\.0\\.1 port ${port} and \\d+: EADDRINUSE`))
  t.notMatch(busy.stderr, /\n\s+at /, 'no stack trace')
})

t.test('a slow client is cut off near headers_timeout', async (t) => {
  const dir = tempDir(t)
  const { file, port } = await exampleIn(dir)
  writeFileSync(file, readFileSync(file, 'utf8').replace('headers_timeout: 10s', 'headers_timeout: 1s'))
  const server = serve(file)
  t.teardown(() => { server.child.kill('SIGKILL') })
  await server.listening
  const started = Date.now()
  const res = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
    let data = ''
    socket.on('secureConnect', () => socket.write('GET /-/healthz HTTP/1.1\r\nHost: localhost\r\n'))
    socket.on('data', (d: Buffer) => { data += d.toString() })
    socket.on('close', () => resolve(data))
    socket.on('error', () => resolve(data))
  })
  const seconds = (Date.now() - started) / 1000
  t.ok(seconds < 3.5, `closed after ${seconds.toFixed(1)} s`)
  t.match(res, /^HTTP\/1\.1 408/)
})

t.test('every command answers --help and exits 0; misuse exits 2', async (t) => {
  for (const args of [['--help'], ['serve', '--help'], ['check', '--help'], ['token', '--help'], ['token', 'create', '--help'], ['user', '--help'], ['user', 'set', '--help']]) {
    const run = await runCli(args, process.env)
    t.equal(run.code, 0, args.join(' '))
    t.match(run.stdout, /Usage: labelgate/)
  }
  const token = await runCli(['token', '--help'], process.env)
  for (const word of ['create', 'register', 'list', 'revoke', '--expires', '--upstream-token-stdin']) t.match(token.stdout, word)
  const user = await runCli(['user', '--help'], process.env)
  for (const word of ['set', 'disable', 'list', '--role', '--projects']) t.match(user.stdout, word)
  t.equal((await runCli(['frobnicate'], process.env)).code, 2)
  t.equal((await runCli(['token', 'create', '--bogus'], process.env)).code, 2)
  t.equal((await runCli([], process.env)).code, 2)
})
