import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { buildApp } from './app.js'
import type { GatewayConfig } from './config/types.js'
import { openIdentityStore } from './identity/open-store.js'
import type { IdentityStore } from './identity/store.js'
import { loadPolicies } from './policy/load.js'
import type { PolicySet } from './policy/compile.js'
import { loggerOptions } from './logging.js'
import { ensureDevCertificate } from './tls/dev-cert.js'
import { parseHostHeader } from './edge/host.js'

export interface Gateway {
  app: FastifyInstance
  store: IdentityStore
  /** The HTTPS port actually bound (useful with port 0). */
  port: number
  redirectPort: number | null
  close: () => Promise<void>
}

/** The gateway could not bind its ports: the address is taken, not local, or not allowed. */
export class ListenError extends Error {
  constructor (config: GatewayConfig, cause: NodeJS.ErrnoException) {
    const ports = [config.server.port, config.server.httpRedirectPort].filter((p) => p !== null).join(' and ')
    super(`cannot listen on ${config.server.host} port ${ports}: ${cause.code ?? cause.message}`, { cause })
  }
}

export interface StartOptions {
  logger?: Logger
  store?: IdentityStore
}

function tlsOptions (config: GatewayConfig) {
  return {
    cert: readFileSync(config.tls.certFile),
    key: readFileSync(config.tls.keyFile),
    minVersion: config.tls.minVersion,
    // The gateway answers a missing Host itself, with its error body and a log line.
    requireHostHeader: false,
    // Node checks request and header timeouts on this period; its default of 30 s would let a
    // slow client hold a connection long past the configured limits.
    connectionsCheckingInterval: 1000
  }
}

/** Starts the gateway from a loaded configuration and policy set: HTTPS, plus the optional redirect port. */
export async function startGateway (
  config: GatewayConfig, initial: PolicySet, options: StartOptions = {}
): Promise<Gateway> {
  const logger = options.logger ?? pino(loggerOptions(config.log.level))
  if (config.tls.generateDevCertificate) {
    const ca = ensureDevCertificate(config.tls.certFile, config.tls.keyFile)
    if (ca) {
      const note = 'made a development certificate; trust its CA only for development'
      logger.warn({ cert: config.tls.certFile, ca }, note)
    }
  }
  let policies = initial
  const store = options.store ?? openIdentityStore(config.identity)
  // Until the store answers, requests get 503 and readiness says so; the gateway still starts.
  await store.ready().catch((err: Error) => logger.warn({ err: err.message }, 'the identity store is not ready yet'))
  const app = await buildApp({ config, policies: () => policies, store, logger, server: { https: tlsOptions(config) } })
  app.server.headersTimeout = config.server.headersTimeoutMs
  const watchers = [
    watchPolicies(config, logger, (next) => { policies = next }),
    watchCertificate(config, app, logger)
  ]
  let redirect: Server | null = null
  try {
    await app.listen({ host: config.server.host, port: config.server.port })
    const httpsPort = (app.server.address() as AddressInfo).port
    if (config.server.httpRedirectPort !== null) redirect = await startRedirect(config, httpsPort)
  } catch (err) {
    for (const w of watchers) w?.close()
    await app.close()
    await store.close()
    throw new ListenError(config, err as NodeJS.ErrnoException)
  }
  return {
    app,
    store,
    port: (app.server.address() as AddressInfo).port,
    redirectPort: redirect ? (redirect.address() as AddressInfo).port : null,
    close: async () => {
      for (const w of watchers) w?.close()
      await new Promise<void>((resolve) => redirect ? redirect.close(() => resolve()) : resolve())
      await app.close()
      await store.close()
    }
  }
}

/** The plain-HTTP port answers every request with a permanent redirect to HTTPS, and nothing else. */
function startRedirect (config: GatewayConfig, httpsPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    const target = req.url ?? '/'
    const host = parseHostHeader(req.headers.host)
    if (!target.startsWith('/') || target.startsWith('//') || (config.server.publicOrigin === null && host === null)) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('Bad Request\n')
      return
    }
    const origin = config.server.publicOrigin ??
      `https://${host?.hostname ?? 'localhost'}${httpsPort === 443 ? '' : `:${httpsPort}`}`
    res.writeHead(308, { location: origin + target, 'content-type': 'text/plain' }).end('Use HTTPS\n')
  })
  server.headersTimeout = config.server.headersTimeoutMs
  server.requestTimeout = config.server.requestTimeoutMs
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.server.httpRedirectPort ?? 0, config.server.host, () => resolve(server))
  })
}

/** Calls `fn` once a burst of changes to `path` has settled; null when the path cannot be watched. */
function watchSettled (path: string, delayMs: number, fn: () => void): FSWatcher | null {
  let timer: NodeJS.Timeout | null = null
  try {
    return watch(path, () => {
      if (timer) clearTimeout(timer)
      timer = setTimeout(fn, delayMs)
    })
  } catch {
    return null
  }
}

/** A running gateway reloads its policies when the folder changes, and keeps the last good set. */
function watchPolicies (config: GatewayConfig, logger: Logger, apply: (p: PolicySet) => void): FSWatcher | null {
  return watchSettled(config.policies.dir, 200, () => {
    try {
      apply(loadPolicies(config.policies.dir))
      logger.info({ dir: config.policies.dir }, 'policies reloaded')
    } catch (err) {
      const problems = (err as { problems?: unknown }).problems
      logger.error({ problems }, 'policies not reloaded: the new set is invalid; keeping the last good one')
    }
  })
}

/** A renewed certificate and key are picked up without a restart. */
function watchCertificate (config: GatewayConfig, app: FastifyInstance, logger: Logger): FSWatcher | null {
  return watchSettled(config.tls.certFile, 500, () => {
    try {
      (app.server as unknown as { setSecureContext: (o: object) => void }).setSecureContext(tlsOptions(config))
      logger.info({ cert: config.tls.certFile }, 'certificate reloaded')
    } catch (err) {
      logger.error({ err }, 'certificate not reloaded; keeping the current one')
    }
  })
}
