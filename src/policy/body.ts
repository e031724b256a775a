import { parse as parseJsonAst, iterator, type NumberNode, type ObjectNode } from '@humanwhocodes/momoa'
import { safeParse as parseContentType } from 'fast-content-type-parse'
import { refusedFields, valuesAt } from './fields.js'
import { bodyValueAllowed } from './query.js'
import type { CompiledRequestSpec } from './compile.js'

// Request bodies of rules with a field list: the media type read strictly, JSON parsed strictly,
// the top level and the fields checked. Pure: the same code serves the gateway, `policy test`
// and `policy explain`.

export type BodyKind = 'json' | 'form' | 'multipart'

const KINDS: Record<string, BodyKind> = {
  'application/json': 'json',
  'application/x-www-form-urlencoded': 'form',
  'multipart/form-data': 'multipart'
}

/** Reads Content-Type as RFC 9110 says (case, whitespace, parameters); null when it is not one of ours. */
export function bodyKind (header: string | undefined): BodyKind | { error: string } {
  if (header === undefined) return { error: 'no Content-Type' }
  const { type, parameters } = parseContentType(header)
  const kind = KINDS[type]
  if (kind === undefined) return { error: type === '' ? 'a malformed Content-Type' : `Content-Type ${type}` }
  const charset = parameters.charset?.toLowerCase()
  if (kind === 'json' && charset !== undefined && charset !== 'utf-8') return { error: `charset ${charset}` }
  return kind
}

/** JSON.parse, but a key that appears twice in one object is an error rather than a silent overwrite. */
/** Deeper JSON than this is refused: no Label Studio body needs it, and it exhausts recursion. */
export const MAX_JSON_DEPTH = 128

/** The nesting depth of a JSON text, counted on brackets outside strings. */
export function jsonDepth (text: string): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) deepest = Math.max(deepest, ++depth)
    else if (c === 125 || c === 93) depth--
  }
  return deepest
}

/**
 * JSON.parse, but stricter in the ways that would let the gateway and Label Studio read one body
 * differently: a key repeated in one object, and numbers that do not survive the gateway's own
 * serialisation (1e999 becomes null, 9007199254740993 another id).
 */
export function parseStrictJson (text: string): { value: unknown } | { error: string } {
  if (jsonDepth(text) > MAX_JSON_DEPTH) return { error: `nested deeper than ${MAX_JSON_DEPTH} levels` }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    const at = /position (\d+)/.exec((err as Error).message)?.[1]
    return { error: at === undefined ? 'not valid JSON' : `not valid JSON (at position ${at})` }
  }
  for (const { node } of iterator(parseJsonAst(text, { mode: 'json' }))) {
    if (node.type === 'Number') {
      const n = (node as NumberNode).value
      if (!Number.isFinite(n) || (Number.isInteger(n) && !Number.isSafeInteger(n))) {
        return { error: 'a number too large to be kept exactly' }
      }
    }
    if (node.type !== 'Object') continue
    const seen = new Set<string>()
    for (const member of (node as ObjectNode).members) {
      const name = member.name.type === 'String' ? member.name.value : member.name.name
      if (seen.has(name)) return { error: `the key "${name}" appears twice in one object` }
      seen.add(name)
    }
  }
  return { value }
}

/** Why a body was refused: the public error code, its message argument, and the refused fields. */
export interface BodyRefusal {
  code: 'LG_ERR_REQUEST_NOT_JSON' | 'LG_ERR_REQUEST_BAD_JSON' | 'LG_ERR_POLICY_FIELD_DENIED' |
    'LG_ERR_REQUEST_BODY_TOO_LARGE'
  message: string
  refused?: string[]
}

/** How a body on a rule with a request spec is handled: streamed unchecked (form, multipart), or read as JSON. */
export function judgeContentType (
  spec: CompiledRequestSpec, header: string | undefined, encoding?: string
): 'stream' | 'json' | BodyRefusal {
  // A compressed body cannot be checked, and the gateway forwards its own uncompressed bytes.
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    return { code: 'LG_ERR_REQUEST_NOT_JSON', message: `Content-Encoding ${encoding}` }
  }
  const kind = bodyKind(header)
  if (typeof kind !== 'string') return { code: 'LG_ERR_REQUEST_NOT_JSON', message: kind.error }
  if (kind === 'json') return 'json'
  if (spec.contentTypes.has(kind)) return 'stream'
  return { code: 'LG_ERR_REQUEST_NOT_JSON', message: `not ${kind}` }
}

/** Checks a JSON body against a rule's request spec; returns the parsed value to forward. */
export function judgeJson (spec: CompiledRequestSpec, text: string): { value: unknown } | BodyRefusal {
  const parsed = parseStrictJson(text)
  if ('error' in parsed) return { code: 'LG_ERR_REQUEST_BAD_JSON', message: parsed.error }
  const value = parsed.value
  const isArray = Array.isArray(value)
  const isObject = typeof value === 'object' && value !== null && !isArray
  if ((spec.body === 'object' && !isObject) || (spec.body === 'array' && !isArray)) {
    return { code: 'LG_ERR_REQUEST_BAD_JSON', message: `the top level must be an ${spec.body}` }
  }
  const refused = refusedFields(value, spec.fields)
  for (const check of spec.values) {
    const key = check.segments.at(-1)?.key ?? ''
    const ok = valuesAt(value, check.segments).every((v) => bodyValueAllowed(v, check.spec, key))
    if (!ok) refused.push(`${check.path} (value)`)
  }
  if (refused.length > 0) return { code: 'LG_ERR_POLICY_FIELD_DENIED', message: refused.join(', '), refused }
  return { value }
}
