import { decodeFileUri, parseStorageUri } from './uri.js'

// Which storage URIs a task (or a project) references. Label Studio finds URIs anywhere in task
// data: a whole value, an item of a list, a value deep in an object, or text inside a longer string
// (an HTML snippet, a list of links). The gateway reads them the same way, and also reads back the
// resolver links Label Studio writes in their place when it is asked for resolved data.

/** The most references kept for one object; a task naming more is refused rather than half read. */
export const MAX_REFERENCES = 10_000
const MAX_DEPTH = 64

/** A URI quoted inside longer text (an HTML attribute) runs to its closing quote, spaces included. */
const QUOTED = [/"((?:s3|gs|azure-blob):\/\/[^"<>\r\n]+)"/g, /'((?:s3|gs|azure-blob):\/\/[^'<>\r\n]+)'/g]
/** Unquoted, it ends at white space, a quote, an angle bracket or a backslash. */
const EMBEDDED = /(?:s3|gs|azure-blob):\/\/[^\s"'<>\\]+/g
/** Punctuation that usually ends a sentence rather than a key: the URI is read with and without it. */
const TRAILING = /[.,;:!?)]+$/
const RESOLVER_LINK = /\/(?:tasks|projects)\/[0-9]+\/(?:resolve|presign)\/?\?(?:[^\s"'<>#]*&)?fileuri=([^\s"'<>&#]+)/g

export class TooManyReferences extends Error {}

/** Every storage URI the value references, once each. Throws TooManyReferences past MAX_REFERENCES. */
export function collectReferences (value: unknown): Set<string> {
  const found = new Set<string>()
  walk(value, found, 0)
  return found
}

function walk (value: unknown, found: Set<string>, depth: number): void {
  if (typeof value === 'string') {
    readText(value, found)
    return
  }
  // Deeper than this, Label Studio's own serialiser would have given up long before.
  if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return
  const items = Array.isArray(value) ? value : Object.values(value)
  for (const item of items) walk(item, found, depth + 1)
}

function readText (text: string, found: Set<string>): void {
  if (!text.includes('://') && !text.includes('fileuri=')) return
  const add = (uri: string | null): void => {
    if (uri === null) return
    found.add(uri)
    if (found.size > MAX_REFERENCES) throw new TooManyReferences()
  }
  // A whole value is one URI, as Label Studio reads it (trimmed): keys may hold spaces and quotes,
  // and no part of one (the text before a space) is another reference.
  const whole = parseStorageUri(text.trim())
  if (whole !== null) {
    add(whole.uri)
    return
  }
  // Quoted URIs first, then taken out of the text, so that the part of one before a space is not read as another.
  let rest = text
  for (const pattern of QUOTED) {
    rest = rest.replace(pattern, (_match, uri: string) => {
      add(parseStorageUri(uri)?.uri ?? null)
      return ' '
    })
  }
  for (const match of rest.matchAll(EMBEDDED)) {
    add(parseStorageUri(match[0])?.uri ?? null)
    if (TRAILING.test(match[0])) add(parseStorageUri(match[0].replace(TRAILING, ''))?.uri ?? null)
  }
  for (const match of text.matchAll(RESOLVER_LINK)) {
    const encoded = match[1] ?? ''
    let value: string | null = null
    try {
      value = decodeURIComponent(encoded)
    } catch {}
    add(value === null ? null : decodeFileUri(value)?.uri ?? null)
  }
}
