import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { freePort } from './redis.js'
import { REPO_ROOT, tempDir } from './tmp.js'
import { sharedKeySignature } from '../../src/media/sign.js'

// A real Azure Blob emulator for one test file: Azurite's blob service as a child process on a free
// loopback port, with its own data folder. Containers are created and blobs uploaded through the
// Blob REST API with Shared Key authorisation. The request log is Azurite's own debug log, which
// has one line per request with its method and URL and one with its status.

export const AZURITE_ACCOUNT = 'devstoreaccount1'
/** The well-known key of the development account (Azurite's README and constants, Microsoft's docs). */
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export const AZURE_API_VERSION = '2021-08-06'

export interface AzuriteRequest {
  method: string
  /** The request path as sent (still percent-encoded), without the query. */
  path: string
  /** The raw query string without the leading '?' ('' when there is none). */
  query: string
  /** The response status, once Azurite has logged the end of the response. */
  status?: number
}

export interface TestAzurite {
  /** Path-style: http://127.0.0.1:PORT/devstoreaccount1 */
  endpoint: string
  account: string
  accountKey: string
  /** The requests Azurite logged since the start (or the last clearLog), in arrival order. */
  requests: () => AzuriteRequest[]
  /** Waits (at most 5 s) until the log has stopped growing and every logged request has its status. */
  settle: () => Promise<AzuriteRequest[]>
  put: (container: string, blob: string, body: Buffer | string, contentType: string) => Promise<void>
  createContainer: (name: string) => Promise<void>
  /** Forgets the requests logged so far. */
  clearLog: () => void
  stop: () => Promise<void>
}

/** The Authorization header value (`SharedKey account:signature`) of one request, by the gateway's own signer. */
export function sharedKeyAuthorization ({ method, url, headers, account, key }: {
  method: string
  url: URL
  headers: Record<string, string>
  account: string
  key: string
}): string {
  return `SharedKey ${account}:${sharedKeySignature(account, Buffer.from(key, 'base64'), method.toUpperCase(), url, headers)}`
}

// ---------------------------------------------------------------------------------------------

interface Teardown { teardown: (fn: () => unknown) => void }

const MAIN = join(REPO_ROOT, 'node_modules/azurite/dist/src/blob/main.js')

/** Percent-encodes each segment of a container or blob name for a request path. */
export function azurePath (...names: string[]): string {
  return names.flatMap((name) => name.split('/')).map(encodeURIComponent).join('/')
}

export async function startAzurite (t: Teardown, options: { containers: string[] } = { containers: [] }): Promise<TestAzurite> {
  const dir = tempDir(t, 'labelgate-azurite-')
  const port = await freePort()
  const debugLog = join(dir, 'debug.log')
  const args = [
    MAIN, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dir, '--silent',
    '--disableTelemetry', '--skipApiVersionCheck', '--debug', debugLog
  ]
  // Without AZURITE_ACCOUNTS Azurite serves only the development account with its well-known key.
  const env = { ...process.env }
  delete env.AZURITE_ACCOUNTS
  let child: ChildProcess | null = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  let logStart = 0

  const readLog = (): string => {
    let fd: number
    try { fd = openSync(debugLog, 'r') } catch { return '' }
    try {
      const size = statSync(debugLog).size
      const buffer = Buffer.alloc(Math.max(0, size - logStart))
      const read = readSync(fd, buffer, 0, buffer.length, logStart)
      const text = buffer.subarray(0, read).toString('utf8')
      return text.slice(0, text.lastIndexOf('\n') + 1) // whole lines only
    } finally {
      closeSync(fd)
    }
  }

  const requests = (): AzuriteRequest[] => {
    const byContext = new Map<string, AzuriteRequest>()
    for (const line of readLog().split('\n')) {
      // <ISO time> <context id> <level>: <message>
      const m = /^\S+ (\S+) \w+: (.*)$/.exec(line)
      if (!m) continue
      const [, context = '', message = ''] = m
      const start = /^BlobStorageContextMiddleware: RequestMethod=(\S+) RequestURL=(\S+) /.exec(message)
      if (start) {
        const url = start[2] ?? ''
        const pathStart = url.indexOf('/', url.indexOf('//') + 2)
        const target = pathStart === -1 ? '/' : url.slice(pathStart)
        const q = target.indexOf('?')
        byContext.set(context, {
          method: start[1] ?? '',
          path: q === -1 ? target : target.slice(0, q),
          query: q === -1 ? '' : target.slice(q + 1)
        })
        continue
      }
      const end = /^EndMiddleware: End response\. .*?StatusCode=(\d+)/.exec(message)
      const entry = byContext.get(context)
      if (end && entry) entry.status = Number(end[1])
    }
    return [...byContext.values()]
  }

  const settle = async (): Promise<AzuriteRequest[]> => {
    const deadline = Date.now() + 5000
    let lastSize = -1
    while (Date.now() < deadline) {
      let size = 0
      try { size = statSync(debugLog).size } catch {}
      const seen = requests()
      if (size === lastSize && seen.every((r) => r.status !== undefined)) return seen
      lastSize = size
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    throw new Error('azurite: the debug log did not settle within 5 s')
  }

  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`

  const send = async (method: string, path: string, headers: Record<string, string>, body?: Buffer | string) => {
    const url = new URL(`${endpoint}/${path}`)
    const all: Record<string, string> = {
      'x-ms-date': new Date().toUTCString(),
      'x-ms-version': AZURE_API_VERSION,
      'content-length': String(body === undefined ? 0 : Buffer.byteLength(body)),
      ...headers
    }
    all.authorization = sharedKeyAuthorization({ method, url, headers: all, account: AZURITE_ACCOUNT, key: AZURITE_ACCOUNT_KEY })
    const res = await request(url, { method: method as 'PUT', headers: all, ...(body === undefined ? {} : { body }) })
    const text = await res.body.text()
    if (res.statusCode !== 201) throw new Error(`azurite ${method} ${url.pathname}${url.search}: ${res.statusCode} ${text}`)
  }

  const azurite: TestAzurite = {
    endpoint,
    account: AZURITE_ACCOUNT,
    accountKey: AZURITE_ACCOUNT_KEY,
    requests,
    settle,
    createContainer: async (name) => { await send('PUT', `${azurePath(name)}?restype=container`, {}) },
    put: async (container, blob, body, contentType) => {
      await send('PUT', azurePath(container, blob), { 'x-ms-blob-type': 'BlockBlob', 'content-type': contentType }, body)
    },
    clearLog: () => {
      try { logStart = statSync(debugLog).size } catch { logStart = 0 }
    },
    stop: async () => {
      const running = child
      child = null
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      await new Promise<void>((resolve) => {
        running.once('exit', () => resolve())
        running.kill('SIGKILL')
      })
    }
  }
  t.teardown(() => azurite.stop())

  await waitReady(port, child, () => stderr)
  for (const name of options.containers) await azurite.createContainer(name)
  await settle()
  azurite.clearLog()
  return azurite
}

/** Any HTTP answer from the blob port means Azurite is listening; gives up after 15 s. */
async function waitReady (port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000
  let last: unknown = null
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`azurite exited (${child.exitCode ?? child.signalCode}) before it was ready: ${stderr()}`)
    }
    try {
      const res = await request(`http://127.0.0.1:${port}/`, { method: 'GET', headersTimeout: 1000, bodyTimeout: 1000 })
      await res.body.dump()
      return
    } catch (err) {
      last = err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  throw new Error(`azurite did not become ready on port ${port} within 15 s: ${String(last)} ${stderr()}`)
}
