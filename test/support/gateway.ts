import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Agent, request } from 'undici'
import { stringify } from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { loadPolicies } from '../../src/policy/load.js'
import { startGateway, type Gateway } from '../../src/server.js'
import { captureLogs, type LogCapture } from './logs.js'
import type { TestRedis } from './redis.js'
import { makeCertificates, REPO_ROOT, tempDir } from './tmp.js'

// A real gateway on a real TLS socket, configured through a real YAML file, for end-to-end tests.

export type StoreKind = 'redis' | 'embedded'

export interface TestGatewayOptions {
  store: StoreKind
  redis?: TestRedis
  upstreamUrl: string
  /** Merged over the generated configuration, section by section. */
  config?: Record<string, Record<string, unknown>>
  /** identity.encryption_key as 64 hex digits; replicas of one deployment share theirs. Default: a new one. */
  encryptionKey?: string
  /** Environment variables for the configuration's secrets (storage keys). */
  env?: Record<string, string>
}

export interface TestGateway {
  gateway: Gateway
  url: string
  ca: string
  configFile: string
  env: NodeJS.ProcessEnv
  logs: LogCapture
  dispatcher: Agent
  cli: (args: string[], stdin?: string) => Promise<{ code: number, stdout: string, stderr: string }>
  /** Makes a bound user (all projects unless given) and a token carrying a Label Studio token; returns the gateway token. */
  issueToken: (user: string, role: string, upstreamToken?: string, extra?: string[], projects?: string) => Promise<string>
  /** Waits until `count` access lines have been written (they are written once a response has finished). */
  waitForAccessLines: (count: number) => Promise<Array<Record<string, unknown>>>
}

interface Teardown { teardown: (fn: () => unknown) => void }

function storeSection (options: TestGatewayOptions, dir: string): Record<string, unknown> {
  if (options.store === 'embedded') return { embedded: { path: join(dir, 'identity') } }
  const redis = options.redis
  if (!redis) throw new Error('a redis store needs a TestRedis')
  return {
    redis: {
      url: redis.url,
      username: redis.username,
      password: { env: 'LG_TEST_REDIS_PASSWORD' },
      tls: { ca: redis.ca, cert: redis.cert, key: redis.key },
      key_prefix: redis.keyPrefix
    }
  }
}

export async function startTestGateway (t: Teardown, options: TestGatewayOptions): Promise<TestGateway> {
  const dir = tempDir(t, 'labelgate-gw-')
  const certs = makeCertificates(join(dir, 'certs'))
  const encryptionKey = options.encryptionKey ?? randomBytes(32).toString('hex')
  const env = {
    ...process.env, ...options.env, LG_TEST_KEY: encryptionKey, LG_TEST_REDIS_PASSWORD: options.redis?.password ?? ''
  }
  const extra = options.config ?? {}
  const config = {
    server: { host: '127.0.0.1', port: 0, ...extra.server },
    tls: { cert: certs.cert, key: certs.key, ...extra.tls },
    upstream: { url: options.upstreamUrl, timeouts: { connect: '1s', headers: '2s', body: '2s' }, ...extra.upstream },
    identity: { ...storeSection(options, dir), encryption_key: { env: 'LG_TEST_KEY' }, ...extra.identity },
    policies: { dir: join(REPO_ROOT, 'policies'), ...extra.policies },
    // Counted as in production, with room for the suite's bursts; tests of the limits set their own.
    rate_limits: { max: 100_000, anonymous_max: 100_000, auth_endpoints_max: 100_000, ...extra.rate_limits }
  }
  // Sections the gateway has no test defaults for (cors, headers, filters, ...) are taken as given.
  const rest = Object.fromEntries(Object.entries(extra).filter(([name]) => !(name in config)))
  const configFile = join(dir, 'gateway.yaml')
  writeFileSync(configFile, stringify({ ...config, ...rest }))
  const loaded = loadConfig(configFile, { env })
  const logs = captureLogs()
  const gateway = await startGateway(loaded, loadPolicies(loaded.policies.dir), { logger: logs.logger })
  t.teardown(() => gateway.close())
  const dispatcher = new Agent({ connect: { ca: readFileSync(certs.ca) } })
  t.teardown(() => dispatcher.close())

  const cli = (args: string[], stdin?: string) => runCli([...args, '--config', configFile], env, stdin)
  const handle: TestGateway = {
    gateway,
    url: `https://127.0.0.1:${gateway.port}`,
    ca: certs.ca,
    configFile,
    env,
    logs,
    dispatcher,
    cli,
    issueToken: async (user, role, upstreamToken, extraArgs = [], projects = 'all') => {
      const bound = await cli(['user', 'set', user, '--role', role, '--projects', projects])
      if (bound.code !== 0) throw new Error(`user set failed: ${bound.stderr}`)
      const args = ['token', 'create', '--user', user, ...extraArgs]
      if (upstreamToken !== undefined) args.push('--upstream-token-stdin')
      const made = await cli(args, upstreamToken)
      if (made.code !== 0) throw new Error(`token create failed: ${made.stderr}`)
      return made.stdout.trim()
    },
    waitForAccessLines: async (count) => {
      const deadline = Date.now() + 5000
      while (logs.accessLines().length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      return logs.accessLines()
    }
  }
  return handle
}

export const CLI = join(REPO_ROOT, 'dist/src/cli.js')

/** Runs the built command line as a user would, with standard input when given. */
export function runCli (args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.end(stdin ?? '')
  })
}

/** One HTTPS request to the gateway with undici; the body is read as text. */
export async function call (gw: TestGateway, method: string, path: string, headers: Record<string, string | string[]> = {}, body?: string) {
  const res = await request(gw.url + path, {
    method: method as 'GET',
    headers,
    ...(body === undefined ? {} : { body }),
    dispatcher: gw.dispatcher
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> }
}
