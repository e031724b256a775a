// Origins as browsers send them, shared by every section that lists origins.

// scheme://host[:port] and at most a trailing slash: no user, path, query, fragment or backslash.
const ORIGIN_SHAPE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@\s\\]+\/?$/

/**
 * An origin as browsers serialise it in the Origin header: lower-case scheme and host, the default
 * port left out. `null` and wildcards are refused: an allowlist names each origin exactly.
 */
export function exactOrigin (text: string): { origin: string } | { error: string } {
  if (text === 'null' || text.includes('*')) {
    return { error: 'must name one origin exactly, such as https://app.example.com: "null" and wildcards are refused' }
  }
  if (!ORIGIN_SHAPE.test(text)) {
    return { error: 'must be an origin, scheme://host[:port], such as https://app.example.com: no path or query' }
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return { error: 'must be an origin, scheme://host[:port], such as https://app.example.com' }
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { error: 'must use https:// or http://' }
  return { origin: url.origin }
}
