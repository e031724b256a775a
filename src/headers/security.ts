import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config/types.js'

// The security headers of every response, set by @fastify/helmet before anything can refuse a
// request, and the stricter policy of media responses. Label Studio's own copies of these headers
// are removed from its answers (src/proxy/headers.ts), so the gateway's values always win.

/**
 * Where Label Studio serves files that users or storages provide: everything under its media URL
 * /data/ (uploads, avatars, exports), uploaded-file downloads, local files (a route Label Studio
 * matches anywhere in the path) and the storage resolvers. Served HTML and SVG there ran as Label
 * Studio's own pages: CVE-2023-47115 (avatars), CVE-2024-23633 (imported files). A trailing slash
 * is optional, as Label Studio retries a path without one with one added. The gateway's own signed
 * media links are media too.
 */
const MEDIA_PATHS = [
  /^\/data(\/|$)/,
  /^\/storage-data(\/|$)/,
  /\/data\/local-files(\/|$)/,
  /^\/(tasks|projects)\/[^/]+\/(resolve|presign)(\/|$)/,
  /^\/-\/media\//
]

export function isMediaPath (path: string): boolean {
  return MEDIA_PATHS.some((pattern) => pattern.test(path))
}

function frameAncestors (frameOptions: GatewayConfig['headers']['frameOptions']): string {
  return frameOptions === 'deny' ? "'none'" : "'self'"
}

/**
 * The policy of media responses: nothing loads, and the document is sandboxed (a unique origin,
 * no scripts, no forms, no plugins), so an HTML or SVG file shows as an inert page at most.
 */
export function mediaPolicy (frameOptions: GatewayConfig['headers']['frameOptions']): string {
  return `default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors ${frameAncestors(frameOptions)}`
}

/** What the gateway changes of helmet's defaults; accepted by helmet and @fastify/helmet alike. */
interface GatewayHelmetOptions {
  hsts: { maxAge: number, includeSubDomains: boolean }
  contentSecurityPolicy: { useDefaults: false, reportOnly: boolean, directives: Record<string, string[]> }
  crossOriginEmbedderPolicy: false
  xFrameOptions: { action: GatewayConfig['headers']['frameOptions'] }
  referrerPolicy: { policy: GatewayConfig['headers']['referrerPolicy'] }
}

/** helmet's options: its defaults, with the gateway's HSTS, frame, referrer and CSP settings. */
export function helmetOptions (config: Pick<GatewayConfig, 'tls' | 'headers'>): GatewayHelmetOptions {
  const { frameOptions, referrerPolicy, csp } = config.headers
  return {
    hsts: { maxAge: config.tls.hstsMaxAge, includeSubDomains: true },
    contentSecurityPolicy: {
      useDefaults: false,
      reportOnly: csp.reportOnly,
      directives: { ...csp.directives, 'frame-ancestors': [frameAncestors(frameOptions)] }
    },
    crossOriginEmbedderPolicy: false,
    xFrameOptions: { action: frameOptions },
    referrerPolicy: { policy: referrerPolicy }
  }
}

/**
 * The same headers for the few requests Fastify answers without running any hook (a target its
 * router cannot decode), set on the raw response as @fastify/helmet sets them.
 */
export function createSecurityHeaders (config: Pick<GatewayConfig, 'tls' | 'headers'>) {
  const middleware = helmet(helmetOptions(config))
  return (req: IncomingMessage, res: ServerResponse): void => {
    middleware(req, res, () => {})
  }
}

interface MediaOptions {
  frameOptions: GatewayConfig['headers']['frameOptions']
}

async function mediaHeaders (app: FastifyInstance, options: MediaOptions): Promise<void> {
  const policy = mediaPolicy(options.frameOptions)
  // After the edge, which has read the canonical path; helmet has set its headers on the raw
  // response by then, and this replaces its policy there. Enforced even when the rest is report-only.
  app.addHook('onRequest', async (request, reply) => {
    const path = request.gate.target?.path
    if (path === undefined || !isMediaPath(path)) return
    reply.raw.setHeader('content-security-policy', policy)
    reply.raw.removeHeader('content-security-policy-report-only')
  })
}

export const mediaHeadersPlugin = fp(mediaHeaders, {
  name: 'labelgate-media-headers', fastify: '5.x', dependencies: ['labelgate-edge']
})
