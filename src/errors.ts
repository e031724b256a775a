import createError from '@fastify/error'

// The one catalogue of errors the gateway answers or exits with. The code is the stable public
// identifier: it is the `code` of the JSON error body, the `reason` of the access log line and a
// row of the README's error table. Messages shown to clients never name policy internals.

export const LG_ERR_REQUEST_NOT_CANONICAL = createError(
  'LG_ERR_REQUEST_NOT_CANONICAL', 'The request target is not in canonical form: %s', 400)
export const LG_ERR_REQUEST_BAD_METHOD = createError(
  'LG_ERR_REQUEST_BAD_METHOD', 'The method %s is not accepted', 400)
export const LG_ERR_REQUEST_METHOD_OVERRIDE = createError(
  'LG_ERR_REQUEST_METHOD_OVERRIDE', 'Method overrides are refused: %s', 400)
export const LG_ERR_REQUEST_BAD_HEADER = createError(
  'LG_ERR_REQUEST_BAD_HEADER', 'The request headers are ambiguous: %s', 400)
export const LG_ERR_REQUEST_UNKNOWN_HOST = createError(
  'LG_ERR_REQUEST_UNKNOWN_HOST', 'This gateway does not serve that host', 421)
export const LG_ERR_REQUEST_MALFORMED = createError(
  'LG_ERR_REQUEST_MALFORMED', 'The request could not be parsed as HTTP/1.1', 400)
export const LG_ERR_REQUEST_HEADERS_TOO_LARGE = createError(
  'LG_ERR_REQUEST_HEADERS_TOO_LARGE', 'The request headers are too large', 431)
export const LG_ERR_REQUEST_TIMEOUT = createError(
  'LG_ERR_REQUEST_TIMEOUT', 'The request was not received in time', 408)
export const LG_ERR_REQUEST_ABORTED = createError(
  'LG_ERR_REQUEST_ABORTED', 'The client closed the connection before the request was complete', 400)
export const LG_ERR_CORS_ORIGIN_DENIED = createError(
  'LG_ERR_CORS_ORIGIN_DENIED', 'This origin may not call the gateway from a browser', 403)
export const LG_ERR_AUTH_MISSING = createError(
  'LG_ERR_AUTH_MISSING', 'This route needs a credential: send Authorization: Token <token>', 401)
export const LG_ERR_AUTH_INVALID = createError(
  'LG_ERR_AUTH_INVALID', 'The credential is not valid', 401)
export const LG_ERR_CSRF_ORIGIN_DENIED = createError(
  'LG_ERR_CSRF_ORIGIN_DENIED', 'A write with cookies must come from this site: its Origin is not accepted', 403)
export const LG_ERR_POLICY_DENIED = createError(
  'LG_ERR_POLICY_DENIED', 'Your role may not %s %s', 403)
export const LG_ERR_POLICY_FIELD_DENIED = createError(
  'LG_ERR_POLICY_FIELD_DENIED', 'Fields your role may not send: %s', 400)
export const LG_ERR_POLICY_QUERY_DENIED = createError(
  'LG_ERR_POLICY_QUERY_DENIED', 'Query parameters your role may not send: %s', 400)
export const LG_ERR_RATE_LIMITED = createError(
  'LG_ERR_RATE_LIMITED', 'Too many requests: retry in %s seconds', 429)
export const LG_ERR_PROJECT_FORBIDDEN = createError(
  'LG_ERR_PROJECT_FORBIDDEN', 'This request reaches a project you are not bound to', 403)
export const LG_ERR_PROJECT_NOT_FOUND = createError(
  'LG_ERR_PROJECT_NOT_FOUND', 'Not found', 404)
export const LG_ERR_PROJECT_REQUIRED = createError(
  'LG_ERR_PROJECT_REQUIRED', 'This request must name its project: %s', 400)
export const LG_ERR_PROJECT_BAD_ID = createError(
  'LG_ERR_PROJECT_BAD_ID', 'An object id in the request is not acceptable: %s', 400)
export const LG_ERR_UPSTREAM_LOOKUP_FAILED = createError(
  'LG_ERR_UPSTREAM_LOOKUP_FAILED', 'Label Studio did not say which project an object belongs to', 502)
export const LG_ERR_REQUEST_NOT_JSON = createError(
  'LG_ERR_REQUEST_NOT_JSON', 'This route takes a JSON body (Content-Type: application/json): %s', 415)
export const LG_ERR_REQUEST_NOT_FORM = createError(
  'LG_ERR_REQUEST_NOT_FORM', 'This route takes a UTF-8 form body (application/x-www-form-urlencoded)', 415)
export const LG_ERR_PASSWORD_POLICY = createError(
  'LG_ERR_PASSWORD_POLICY', 'The password is not acceptable: %s', 400)
export const LG_ERR_SIGNUP_CLOSED = createError(
  'LG_ERR_SIGNUP_CLOSED', 'Signing up here is not possible: %s', 403)
export const LG_ERR_REQUEST_BAD_JSON = createError(
  'LG_ERR_REQUEST_BAD_JSON', 'The JSON body is not acceptable: %s', 400)
export const LG_ERR_REQUEST_BODY_TOO_LARGE = createError(
  'LG_ERR_REQUEST_BODY_TOO_LARGE', 'The body is larger than this route accepts (%s bytes)', 413)
export const LG_ERR_MEDIA_BAD_URI = createError(
  'LG_ERR_MEDIA_BAD_URI', 'The file reference is not acceptable: %s', 400)
export const LG_ERR_MEDIA_NOT_REFERENCED = createError(
  'LG_ERR_MEDIA_NOT_REFERENCED', 'This file is not one of this task\'s files', 403)
export const LG_ERR_MEDIA_NO_BACKEND = createError(
  'LG_ERR_MEDIA_NO_BACKEND', 'No storage of this gateway serves this file to this project', 403)
export const LG_ERR_MEDIA_NOT_FOUND = createError(
  'LG_ERR_MEDIA_NOT_FOUND', 'The file does not exist', 404)
export const LG_ERR_MEDIA_RANGE_NOT_SATISFIABLE = createError(
  'LG_ERR_MEDIA_RANGE_NOT_SATISFIABLE', 'The requested range is outside the file', 416)
export const LG_ERR_MEDIA_PRECONDITION_FAILED = createError(
  'LG_ERR_MEDIA_PRECONDITION_FAILED', 'The file has changed', 412)
export const LG_ERR_MEDIA_LINK_INVALID = createError(
  'LG_ERR_MEDIA_LINK_INVALID', 'The media link is not valid: %s', 403)
export const LG_ERR_STORAGE_DENIED = createError(
  'LG_ERR_STORAGE_DENIED', 'The storage refused the gateway\'s credentials', 502)
export const LG_ERR_STORAGE_FAILED = createError(
  'LG_ERR_STORAGE_FAILED', 'The storage failed to answer the request', 502)
export const LG_ERR_STORAGE_UNREACHABLE = createError(
  'LG_ERR_STORAGE_UNREACHABLE', 'The storage could not be reached', 502)
export const LG_ERR_STORAGE_TIMEOUT = createError(
  'LG_ERR_STORAGE_TIMEOUT', 'The storage did not answer in time', 504)
export const LG_ERR_UPSTREAM_BAD_RESPONSE = createError(
  'LG_ERR_UPSTREAM_BAD_RESPONSE', 'Label Studio sent a response the gateway cannot filter', 502)
export const LG_ERR_TOKEN_STORE_UNAVAILABLE = createError(
  'LG_ERR_TOKEN_STORE_UNAVAILABLE', 'The identity store is unavailable; try again shortly', 503)
export const LG_ERR_UPSTREAM_UNREACHABLE = createError(
  'LG_ERR_UPSTREAM_UNREACHABLE', 'Label Studio could not be reached', 502)
export const LG_ERR_UPSTREAM_TIMEOUT = createError(
  'LG_ERR_UPSTREAM_TIMEOUT', 'Label Studio did not answer in time', 504)
export const LG_ERR_INTERNAL = createError(
  'LG_ERR_INTERNAL', 'The gateway failed to handle the request', 500)
export const LG_ERR_NOT_READY = createError(
  'LG_ERR_NOT_READY', 'The gateway is not ready: %s', 503)

// Startup errors: they stop the process before it listens and never reach a client.
export const LG_ERR_CONFIG_INVALID = createError(
  'LG_ERR_CONFIG_INVALID', 'The configuration is invalid:\n%s', undefined, TypeError)
export const LG_ERR_POLICY_INVALID = createError(
  'LG_ERR_POLICY_INVALID', 'The policies are invalid:\n%s', undefined, TypeError)

/** An error answered to a client, with the precise reason that only the log may see. */
export interface GatewayError extends Error {
  code: string
  statusCode?: number
  detail?: string
}

export function withDetail<E extends Error> (err: E, detail: string): E & { detail: string } {
  return Object.assign(err, { detail })
}
