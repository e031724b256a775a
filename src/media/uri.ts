// Storage URIs as Label Studio writes them in task data, and the `fileuri` parameter that carries
// one to its resolver. Pure: nothing here reads the network or the file system.

export type Scheme = 's3' | 'gs' | 'azure-blob'

/** An object of a bucket or container, named as task data names it. */
export interface StorageUri {
  scheme: Scheme
  /** The bucket (S3, GCS) or container (Azure). */
  bucket: string
  /** The object's key or blob name, exactly as written after the bucket. */
  key: string
  /** The URI as written: what a task must reference. */
  uri: string
}

const URI = /^(s3|gs|azure-blob):\/\/([^/?#]+)\/(.+)$/s
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/
/** Control characters: no object name that Label Studio shows needs them, and they confuse logs and signing. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const CONTROL = /[\u0000-\u001f\u007f]/
const BASE64URL = /^[A-Za-z0-9_-]+$/

/** The longest `fileuri` read: keys of S3, GCS and Azure are at most 1,024 bytes. */
export const MAX_URI_LENGTH = 2048

/**
 * Reads a storage URI; null when it is not one a backend could serve. A key with `.` or `..`
 * segments is refused: a store or proxy that normalises the request path would reach another key.
 */
export function parseStorageUri (text: string): StorageUri | null {
  if (text.length > MAX_URI_LENGTH || CONTROL.test(text)) return null
  const match = URI.exec(text)
  if (match === null) return null
  const [, scheme, bucket, key] = match as unknown as [string, Scheme, string, string]
  if (!BUCKET.test(bucket) || bucket.includes('..')) return null
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) return null
  return { scheme, bucket, key, uri: text }
}

/**
 * The URI a resolver's `fileuri` names. Label Studio writes it as URL-safe base64 (its padding
 * written, percent-encoded or left out); its resolver falls back to reading the value as the URI
 * itself. Base64 is read strictly: the text must be exactly what encoding the decoded URI gives.
 */
export function decodeFileUri (value: string): StorageUri | null {
  // Base64 of the longest URI: up to three UTF-8 bytes for each of its characters.
  if (value.length === 0 || value.length > MAX_URI_LENGTH * 4) return null
  const unpadded = value.replace(/={1,2}$/, '')
  if (BASE64URL.test(unpadded) && unpadded.length % 4 !== 1) {
    const bytes = Buffer.from(unpadded, 'base64url')
    if (bytes.toString('base64url') === unpadded) {
      const text = utf8(bytes)
      const parsed = text === null ? null : parseStorageUri(text)
      if (parsed !== null) return parsed
    }
  }
  return parseStorageUri(value)
}

function utf8 (bytes: Buffer): string | null {
  try {
    // A byte-order mark is kept, and so refused: the text is exactly what was encoded.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)
  } catch {
    return null
  }
}

/** `fileuri` for a URI, as Label Studio writes it. */
export function encodeFileUri (uri: string): string {
  return Buffer.from(uri, 'utf8').toString('base64url')
}

/** A key as one URL path: each segment percent-encoded as SigV4 and Azure expect (RFC 3986 unreserved kept). */
export function encodeKeyPath (key: string): string {
  return key.split('/').map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())).join('/')
}
