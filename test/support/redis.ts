import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { makeCertificates, tempDir } from './tmp.js'

// A real redis-server for one test file: TLS only (client certificates required), an ACL user
// limited to one key prefix, no persistence. It can be stopped and started again to test outages.

export interface TestRedis {
  url: string
  port: number
  ca: string
  cert: string
  key: string
  username: string
  password: string
  keyPrefix: string
  stop: () => Promise<void>
  start: () => Promise<void>
  /** Freezes the server (SIGSTOP): connections stay open but nothing answers, as in a network partition. */
  pause: () => void
  resume: () => void
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

// The gateway's commands (README): the identity store's, then the rate limits' (a Lua script run
// with eval and evalsha, whose own calls the ACL checks too: incr, pexpire, pttl, get). Tests also
// read the expiry of cached entries with pttl.
const COMMANDS = [
  'get', 'set', 'mget', 'hset', 'hget', 'hgetall', 'sadd', 'smembers', 'publish', 'subscribe',
  'unsubscribe', 'ping', 'multi', 'exec', 'discard', 'quit', 'hello', 'client', 'info', 'select', 'pttl',
  'eval', 'evalsha', 'incr', 'pexpire'
]

interface Teardown { teardown: (fn: () => unknown) => void }

export async function startRedis (t: Teardown): Promise<TestRedis> {
  const dir = tempDir(t, 'labelgate-redis-')
  const certs = makeCertificates(join(dir, 'certs'))
  const port = await freePort()
  const username = 'labelgate'
  const password = randomBytes(16).toString('hex')
  const keyPrefix = `lgtest-${randomBytes(4).toString('hex')}:`
  const acl = join(dir, 'users.acl')
  writeFileSync(acl, [
    'user default off',
    `user ${username} on >${password} resetkeys ~${keyPrefix}* resetchannels &${keyPrefix}* -@all ${COMMANDS.map((c) => '+' + c).join(' ')}`
  ].join('\n') + '\n')
  const args = [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
    '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca,
    '--tls-auth-clients', 'yes', '--aclfile', acl, '--save', '', '--appendonly', 'no', '--dir', dir
  ]
  let child: ChildProcess | null = null
  const handle: TestRedis = {
    url: `rediss://127.0.0.1:${port}`,
    port,
    ...certs,
    username,
    password,
    keyPrefix,
    start: async () => {
      child = spawn('redis-server', args, { stdio: 'ignore' })
      await waitReady(handle)
    },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') },
    stop: async () => {
      const running = child
      child = null
      if (!running || running.exitCode !== null) return
      await new Promise<void>((resolve) => {
        running.once('exit', () => resolve())
        running.kill('SIGKILL')
        running.kill('SIGCONT')
      })
    }
  }
  t.teardown(() => handle.stop())
  await handle.start()
  return handle
}

async function waitReady (redis: TestRedis): Promise<void> {
  const deadline = Date.now() + 10_000
  let last: unknown = null
  while (Date.now() < deadline) {
    const client = new Redis(redis.url, {
      username: redis.username,
      password: redis.password,
      tls: { ca: readFileSync(redis.ca), cert: readFileSync(redis.cert), key: readFileSync(redis.key) },
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null
    })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      client.disconnect()
      return
    } catch (err) {
      last = err
      client.disconnect()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  throw new Error(`redis-server did not become ready on port ${redis.port}: ${String(last)}`)
}
