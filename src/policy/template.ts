// Path templates: `/api/projects/{project}/tasks`, with `{name}` standing for exactly one segment,
// `{name:int}` for one segment of digits only (Label Studio's ids), and a final `**` for the rest
// of the path. Matching works on the raw, already canonical request
// path, segment by segment; a trailing slash never changes which template matches.

export type TemplateSegment =
  | { kind: 'literal', text: string }
  | { kind: 'param', name: string, int: boolean }
  | { kind: 'rest' }

export interface PathTemplate {
  source: string
  segments: TemplateSegment[]
}

// The characters a literal segment may hold: RFC 3986 unreserved and sub-delims less ';' and ',',
// plus ':' and '@'. Nothing percent-encoded, so a literal compares equal to a raw segment only
// when both spell the same bytes.
const LITERAL = /^[A-Za-z0-9._~!$&'()*+=:@-]+$/
const PARAM = /^\{([a-z_][a-z0-9_]*)(:int)?\}$/
const DIGITS = /^[0-9]+$/

/** A path or template without its one trailing slash, which never changes what matches. */
export function normalised (path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

/** Splits a path into segments, ignoring one trailing slash: `/a/b/` and `/a/b` both give [a, b]. */
export function splitPath (path: string): string[] {
  const trimmed = normalised(path)
  return trimmed === '/' ? [] : trimmed.slice(1).split('/')
}

/** Parses a template, or returns the reason it is not one. */
export function parseTemplate (source: string): PathTemplate | { error: string } {
  if (!source.startsWith('/')) return { error: 'must start with /' }
  if (source.includes('//')) return { error: 'must not contain empty segments (//)' }
  const parts = splitPath(source)
  const segments: TemplateSegment[] = []
  const names = new Set<string>()
  for (const [i, part] of parts.entries()) {
    const param = PARAM.exec(part)
    if (part === '**') {
      if (i !== parts.length - 1) return { error: '** may only be the last segment' }
      segments.push({ kind: 'rest' })
    } else if (param) {
      const name = param[1] as string
      if (names.has(name)) return { error: `parameter {${name}} appears twice` }
      names.add(name)
      segments.push({ kind: 'param', name, int: param[2] !== undefined })
    } else if (part === '.' || part === '..' || !LITERAL.test(part)) {
      return { error: `segment "${part}" is neither a literal, a {name}, a {name:int} nor a final **` }
    } else {
      segments.push({ kind: 'literal', text: part })
    }
  }
  return { source, segments }
}

/** Matches path segments against a template; returns the parameters, or null. */
export function matchTemplate (template: PathTemplate, segments: readonly string[]): Record<string, string> | null {
  const params: Record<string, string> = {}
  const t = template.segments
  for (let i = 0; i < t.length; i++) {
    const seg = t[i] as TemplateSegment
    if (seg.kind === 'rest') return i < segments.length ? params : null
    const actual = segments[i]
    if (actual === undefined) return null
    if (seg.kind === 'literal' && seg.text !== actual) return null
    if (seg.kind === 'param') {
      if (seg.int && !DIGITS.test(actual)) return null
      params[seg.name] = actual
    }
  }
  return segments.length === t.length ? params : null
}

/** Orders templates most specific first: literals, then {name:int}, then {name}, then a final **. */
export function compareSpecificity (a: PathTemplate, b: PathTemplate): number {
  const rank = (s: TemplateSegment | undefined): number => {
    if (s === undefined) return 4
    if (s.kind === 'literal') return 0
    if (s.kind === 'param') return s.int ? 1 : 2
    return 3
  }
  const n = Math.max(a.segments.length, b.segments.length)
  for (let i = 0; i < n; i++) {
    const diff = rank(a.segments[i]) - rank(b.segments[i])
    if (diff !== 0) return diff
  }
  return 0
}

function segmentsMeet (a: TemplateSegment, b: TemplateSegment): boolean {
  if (a.kind === 'literal' && b.kind === 'literal') return a.text === b.text
  if (a.kind === 'literal' && b.kind === 'param') return !b.int || DIGITS.test(a.text)
  if (a.kind === 'param' && b.kind === 'literal') return !a.int || DIGITS.test(b.text)
  return true
}

/** True when some path matches both templates. */
export function templatesOverlap (a: PathTemplate, b: PathTemplate): boolean {
  for (let i = 0; ; i++) {
    const x = a.segments[i]
    const y = b.segments[i]
    if (x === undefined && y === undefined) return true
    // A final ** takes one segment or more: it meets anything that still has a segment here.
    if (x?.kind === 'rest') return y !== undefined
    if (y?.kind === 'rest') return x !== undefined
    if (x === undefined || y === undefined || !segmentsMeet(x, y)) return false
  }
}
