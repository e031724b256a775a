// Field allowlists over JSON values. Pure: no Fastify, no I/O.
//
// A list such as [id, data.text, annotations[].result, meta.*] compiles into a tree. A named field
// keeps its whole subtree; `a[]` walks the elements of array `a`; `*` stands for any key. Arrays
// met where the tree expects an object are walked element by element with the same node, so a
// field list describes one item whether it arrives alone or in a list.

export interface FieldNode {
  /** The whole subtree is allowed. */
  all: boolean
  children: Map<string, FieldNode>
  /** For `*`: any key not named in `children`. */
  any: FieldNode | null
  /** For `[]`: the elements of an array. */
  items: FieldNode | null
}

export interface FieldSegment { key: string, array: boolean }

const SEGMENT = /^([A-Za-z0-9_$@:-]+|\*)(\[\])?$/

export function parseFieldPath (text: string): FieldSegment[] | { error: string } {
  if (text === '') return { error: 'is empty' }
  const segments: FieldSegment[] = []
  for (const part of text.split('.')) {
    const match = SEGMENT.exec(part)
    if (!match) return { error: `segment "${part}" is neither a name, * nor name[]` }
    segments.push({ key: match[1] as string, array: match[2] !== undefined })
  }
  return segments
}

function node (): FieldNode {
  return { all: false, children: new Map(), any: null, items: null }
}

/** Compiles field paths already checked with parseFieldPath. */
export function compileFields (paths: readonly string[]): FieldNode {
  const root = node()
  for (const path of paths) {
    const segments = parseFieldPath(path)
    if ('error' in segments) throw new TypeError(`field path "${path}" ${segments.error}`)
    let at = root
    for (const { key, array } of segments) {
      if (at.all) break
      let next: FieldNode
      if (key === '*') next = at.any ??= node()
      else {
        next = at.children.get(key) ?? node()
        at.children.set(key, next)
      }
      if (array) next = next.items ??= node()
      at = next
    }
    at.all = true
  }
  widenNamed(root)
  return root
}

function union (a: FieldNode, b: FieldNode): FieldNode {
  const out = node()
  out.all = a.all || b.all
  for (const [key, child] of [...a.children, ...b.children]) {
    const existing = out.children.get(key)
    out.children.set(key, existing ? union(existing, child) : union(child, node()))
  }
  if (a.any || b.any) out.any = union(a.any ?? node(), b.any ?? node())
  if (a.items || b.items) out.items = union(a.items ?? node(), b.items ?? node())
  return out
}

/**
 * `*` also covers keys that are named beside it: with [data.a, *], the key `data` is allowed
 * whole. Each named child therefore absorbs what `*` allows, so a lookup needs only one node.
 */
function widenNamed (at: FieldNode): void {
  if (at.any) {
    for (const [key, child] of at.children) at.children.set(key, union(child, at.any))
    widenNamed(at.any)
  }
  for (const child of at.children.values()) widenNamed(child)
  if (at.items) widenNamed(at.items)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isScalar (value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
}

function join (path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`
}

/** The field paths of `value` that the allowlist does not allow, in template form (`a[].b`). */
export function refusedFields (value: unknown, allowed: FieldNode): string[] {
  const refused = new Set<string>()
  walkRequest(value, allowed, '', refused)
  return [...refused]
}

function walkRequest (value: unknown, at: FieldNode, path: string, refused: Set<string>): void {
  if (at.all) return
  if (Array.isArray(value)) {
    for (const element of value) walkRequest(element, at.items ?? at, `${path}[]`, refused)
    return
  }
  if (!isObject(value)) {
    // A scalar where the list names fields inside it: the client sent a shape the policy does not know.
    if (path !== '') refused.add(path)
    return
  }
  for (const [key, inner] of Object.entries(value)) {
    const next = at.children.get(key) ?? at.any
    if (next) walkRequest(inner, next, join(path, key), refused)
    else refused.add(join(path, key))
  }
}

/** A copy of `value` holding only allowed fields; undefined when nothing of it is allowed. */
export function keepFields (value: unknown, at: FieldNode): unknown {
  if (at.all) return value
  if (Array.isArray(value)) {
    const next = at.items ?? at
    const out: unknown[] = []
    for (const element of value) {
      const kept = keepFields(element, next)
      if (kept !== undefined) out.push(kept)
    }
    return out
  }
  if (!isObject(value)) return undefined
  const out: Record<string, unknown> = {}
  for (const [key, inner] of Object.entries(value)) {
    const next = at.children.get(key) ?? at.any
    if (!next) continue
    const kept = keepFields(inner, next)
    if (kept !== undefined) out[key] = kept
  }
  return out
}

// Label Studio's list envelopes: the field list describes one item, the envelope keeps its counts.
const ENVELOPES: Array<{ items: string, marker: string, keep: string[] }> = [
  { items: 'results', marker: 'count', keep: ['count', 'next', 'previous'] },
  { items: 'tasks', marker: 'total', keep: ['total', 'total_annotations', 'total_predictions'] }
]

/** Filters a whole response body: array roots and paginated envelopes need nothing in the policy. */
export function filterResponse (body: unknown, allowed: FieldNode): unknown {
  if (isObject(body) && !allowed.all) {
    for (const envelope of ENVELOPES) {
      const items = body[envelope.items]
      if (Array.isArray(items) && envelope.marker in body && !allowed.children.has(envelope.items)) {
        const out: Record<string, unknown> = {}
        // Counts and page links are scalars; anything else under those names is not an envelope's.
        for (const key of envelope.keep) if (key in body && isScalar(body[key])) out[key] = body[key]
        out[envelope.items] = keepFields(items, allowed)
        return out
      }
    }
  }
  return keepFields(body, allowed) ?? {}
}

/** A response body as the client gets it: the rule's field list, then the gateway-wide drop list. */
export function filterAndDrop (body: unknown, allowed: FieldNode, drops: ReadonlySet<string>): unknown {
  const kept = filterResponse(body, allowed)
  dropKeys(kept, drops)
  return kept
}

/** Removes, in place and at any depth, every key named in `keys`. */
export function dropKeys (value: unknown, keys: ReadonlySet<string>): void {
  if (keys.size === 0) return
  if (Array.isArray(value)) {
    for (const element of value) dropKeys(element, keys)
    return
  }
  if (!isObject(value)) return
  for (const key of Object.keys(value)) {
    if (keys.has(key)) delete value[key]
    else dropKeys(value[key], keys)
  }
}

/** Every value at a field path; arrays on the way are walked element by element. */
export function valuesAt (value: unknown, segments: readonly FieldSegment[]): unknown[] {
  if (segments.length === 0) return [value]
  if (Array.isArray(value)) return value.flatMap((element) => valuesAt(element, segments))
  if (!isObject(value)) return []
  const [first, ...rest] = segments as [FieldSegment, ...FieldSegment[]]
  const inner = first.key === '*' ? Object.values(value) : (Object.hasOwn(value, first.key) ? [value[first.key]] : [])
  return inner.flatMap((v) => first.array && Array.isArray(v) ? v.flatMap((e) => valuesAt(e, rest)) : valuesAt(v, rest))
}
