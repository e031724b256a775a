// Test scaffolding: what Label Studio's web layer adds to the stand-in (labelstudio-standin.ts):
// the headers its Django middlewares put on every answer, and files served from its media URL the
// way Label Studio serves uploads, inline with a type taken from the file name.

import type { IncomingHttpHeaders } from 'node:http'
import type { JsonValue } from './labelstudio-standin-data.js'

/** A file a user uploaded to project 1, as /data/upload/1/<name> serves it. */
export interface Upload { type: string, body: Buffer }

// A script in an upload marks the page it ran in: a test reads the mark from the browser.
const MARK = 'document.title = "script ran"; document.documentElement.setAttribute("data-ran", "yes")'

// The smallest PNG: one transparent pixel.
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='

export const UPLOADS: Readonly<Record<string, Upload>> = {
  'page.html': {
    type: 'text/html; charset=utf-8',
    body: Buffer.from(`<!DOCTYPE html><html><head><title>upload</title></head><body><p>uploaded</p><script>${MARK}</script></body></html>`)
  },
  'drawing.svg': {
    type: 'image/svg+xml',
    body: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>upload</title>' +
      `<rect width="10" height="10"/><script>${MARK}</script></svg>`)
  },
  'pixel.png': { type: 'image/png', body: Buffer.from(PIXEL, 'base64') }
}

// Label Studio's own policy (django-csp, report-only unless LS_CSP_REPORT_ONLY is false), abridged.
const LABEL_STUDIO_CSP = "default-src 'self' 'report-sample'; style-src 'self' 'report-sample' 'unsafe-inline'; " +
  "script-src 'self' 'report-sample' 'unsafe-inline' blob:; img-src 'self' 'report-sample' data:"

/**
 * The headers Label Studio's middleware adds to an answer: Django's SecurityMiddleware
 * (nosniff, Referrer-Policy and Cross-Origin-Opener-Policy at their defaults), django-csp's
 * report-only policy, and django-cors-headers with CORS_ALLOW_ALL_ORIGINS (Label Studio's default:
 * any origin, once the request names one).
 */
export function labelStudioHeaders (request: IncomingHttpHeaders): Record<string, string> {
  const headers: Record<string, string> = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    'content-security-policy-report-only': LABEL_STUDIO_CSP
  }
  if (request.origin !== undefined) headers['access-control-allow-origin'] = '*'
  return headers
}

const STORAGE_URI = /^(s3|gs|azure-blob):\/\//

/**
 * Task data as Label Studio serialises it with `resolve_uri` on (its default): each storage URI
 * becomes a link to the task's resolver carrying the URI in URL-safe base64, padding included.
 * Label Studio rewrites only URIs whose bucket a storage of the project names; the stand-in has no
 * storages, so it rewrites every one.
 */
export function resolveStorageUris (taskId: number, value: JsonValue): JsonValue {
  if (typeof value === 'string') {
    if (!STORAGE_URI.test(value)) return value
    const encoded = Buffer.from(value, 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_')
    return `/tasks/${taskId}/resolve/?fileuri=${encoded}`
  }
  if (Array.isArray(value)) return value.map((item) => resolveStorageUris(taskId, item))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolveStorageUris(taskId, item)]))
  }
  return value
}
