// Query-parameter allowlists. Pure: no Fastify, no I/O.

export type QuerySpec =
  | { kind: 'int' | 'bool' | 'any' | 'dm-filters' }
  | { kind: 'values', values: ReadonlySet<string> }
  | { kind: 'pattern', pattern: RegExp }

export type RawQuerySpec = string | string[] | { pattern: string }

export const QUERY_KINDS = ['int', 'bool', 'any', 'dm-filters'] as const

export function compileQuerySpec (raw: RawQuerySpec): QuerySpec | { error: string } {
  if (Array.isArray(raw)) return { kind: 'values', values: new Set(raw) }
  if (typeof raw === 'object') {
    try {
      return { kind: 'pattern', pattern: new RegExp(`^(?:${raw.pattern})$`, 'u') }
    } catch (err) {
      return { error: `pattern does not compile: ${(err as Error).message}` }
    }
  }
  if ((QUERY_KINDS as readonly string[]).includes(raw)) return { kind: raw as typeof QUERY_KINDS[number] }
  return { error: `must be one of ${QUERY_KINDS.join(', ')}, a list of values, or {pattern: ...}` }
}

// Data Manager filter and ordering names: a column of tasks, never a relation traversal (`__`),
// which is how CVE-2023-47117 read password hashes through the ORM.
const FILTER_NAME = /^filter:tasks:[A-Za-z0-9_]+(\.[A-Za-z0-9_$-]+)*$/
const ORDERING_NAME = /^-?tasks:[A-Za-z0-9_]+(\.[A-Za-z0-9_$-]+)*$/

function dmNamesAllowed (value: unknown, key: string | null): boolean {
  if (Array.isArray(value)) return value.every((v) => dmNamesAllowed(v, key))
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).every(([k, v]) => dmNamesAllowed(v, k))
  }
  if (typeof value !== 'string') return true
  if (key === 'filter') return FILTER_NAME.test(value) && !value.includes('__')
  if (key === 'ordering') return ORDERING_NAME.test(value) && !value.includes('__')
  return true
}

/** Python's urllib.parse.unquote: %XX sequences to UTF-8 text, anything else left as it is. */
export function unquote (text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => Buffer.from(run.replaceAll('%', ''), 'hex').toString('utf8'))
}

function valueAllowed (value: string, spec: QuerySpec): boolean {
  switch (spec.kind) {
    case 'any': return true
    case 'int': return /^[0-9]{1,18}$/.test(value)
    case 'bool': return /^(true|false|1|0)$/i.test(value)
    case 'values': return spec.values.has(value)
    case 'pattern': return spec.pattern.test(value)
    case 'dm-filters': {
      try {
        // Label Studio percent-decodes this parameter once more before parsing it
        // (json.loads(unquote(...))): check what it will read, not what arrived.
        const parsed: unknown = JSON.parse(unquote(value))
        return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && dmNamesAllowed(parsed, null)
      } catch {
        return false
      }
    }
  }
}

/**
 * Checks a value found in a JSON body: Data Manager filters as the JSON itself (the key it sits
 * under gives the context: `filters` or `ordering`), other kinds on the value's text.
 */
export function bodyValueAllowed (value: unknown, spec: QuerySpec, key: string): boolean {
  if (spec.kind === 'dm-filters') {
    if (typeof value === 'string') return valueAllowed(value, spec)
    return typeof value === 'object' && value !== null && dmNamesAllowed(value, key === 'ordering' ? 'ordering' : null)
  }
  if (value === null || typeof value === 'object') return spec.kind === 'any'
  return valueAllowed(String(value), spec)
}

/** The parameters of a raw query string that the allowlist refuses (unknown, repeated or bad value). */
export function refusedParams (rawQuery: string, allowed: ReadonlyMap<string, QuerySpec>): string[] {
  const refused: string[] = []
  const seen = new Set<string>()
  for (const [name, value] of new URLSearchParams(rawQuery)) {
    const spec = allowed.get(name)
    if (!spec) refused.push(name)
    else if (seen.has(name)) refused.push(`${name} (repeated)`)
    else if (!valueAllowed(value, spec)) refused.push(`${name} (value)`)
    seen.add(name)
  }
  return refused
}
