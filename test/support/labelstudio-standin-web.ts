// Test scaffolding: what Label Studio's web layer adds to the stand-in (labelstudio-standin.ts):
// the headers its Django middlewares put on every answer.

import type { IncomingHttpHeaders } from 'node:http'

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
