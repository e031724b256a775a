import { constants } from 'node:fs'
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises'
import type { IncomingHttpHeaders } from 'node:http'
import { join, sep } from 'node:path'
import { Transform, type Readable } from 'node:stream'
import mime from 'mime'
import * as errors from '../errors.js'
import { withDetail } from '../errors.js'
import { byteRange, CACHE_CONTROL, preconditions, typeHeaders } from './http.js'

// Files on a local disk that Label Studio names by path: local-files storage (`?d=` relative to its
// document root) and uploads (`/data/upload/<project>/<name>`). A path is read once (the query or
// path decoding the request already had), joined to its root, resolved with every `..` and
// symbolic link, and must still be inside the root; otherwise it is refused. The file is then
// opened once, without following a link, and what was opened is checked again: a path swapped for
// a link between the check and the open is refused, not followed.

/** Characters no served path needs: NUL and other controls, and backslashes, which some tools read as separators. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const REFUSED = /[\u0000-\u001f\u007f\\]/

const MAX_PATH = 4096

/**
 * The real path of `name` under `root`, inside one of `within` (real directories; the root itself
 * when not given), or a coded error: 400 for a name that is not a path, 403 when it leads
 * elsewhere, 404 when no regular file is there. A path is checked before it is looked up, so that
 * the answer for another folder does not tell whether a file exists there.
 */
export async function resolveInside (
  root: string, name: string, within: readonly string[] | null = null
): Promise<OpenFile> {
  if (name.length === 0 || name.length > MAX_PATH || REFUSED.test(name)) {
    throw withDetail(new errors.LG_ERR_MEDIA_BAD_URI('not a file path'), 'local-path-refused')
  }
  // A root may be missing: the upload folder of a project that has none.
  const realRoot = await realDirectory(root)
  if (realRoot === null) throw withDetail(new errors.LG_ERR_MEDIA_NOT_FOUND(), 'local-root-missing')
  const folders = within ?? [realRoot]
  const allowed = (path: string): boolean => isInside(realRoot, path) && folders.some((dir) => isInside(dir, path))
  const lexical = join(realRoot, name)
  if (!allowed(lexical)) throw withDetail(new errors.LG_ERR_MEDIA_NO_BACKEND(), 'local-outside')
  let real: string
  try {
    real = await realpath(lexical)
  } catch {
    // Missing, or a link to nowhere: Label Studio could not serve it either.
    throw withDetail(new errors.LG_ERR_MEDIA_NOT_FOUND(), 'local-missing')
  }
  if (!allowed(real)) throw withDetail(new errors.LG_ERR_MEDIA_NO_BACKEND(), 'local-link-outside')
  return await openChecked(real, allowed)
}

/** A regular file opened for reading, with what its answer needs. */
export interface OpenFile {
  handle: FileHandle
  path: string
  size: number
  mtimeMs: number
}

/**
 * Opens `real` without following a link in its last part and without blocking on a FIFO, then
 * checks the file actually opened: a regular file, at a path `allowed` accepts (read back from the
 * descriptor where the system shows it, /proc on Linux).
 */
async function openChecked (real: string, allowed: (path: string) => boolean): Promise<OpenFile> {
  let handle: FileHandle
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    throw withDetail(new errors.LG_ERR_MEDIA_NOT_FOUND(), 'local-open-failed')
  }
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw withDetail(new errors.LG_ERR_MEDIA_NOT_FOUND(), 'local-not-a-file')
    const opened = await openedPath(handle)
    if (opened !== null && !allowed(opened)) throw withDetail(new errors.LG_ERR_MEDIA_NO_BACKEND(), 'local-swapped')
    return { handle, path: opened ?? real, size: info.size, mtimeMs: info.mtimeMs }
  } catch (err) {
    await handle.close()
    throw err
  }
}

async function openedPath (handle: FileHandle): Promise<string | null> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`)
  } catch {
    // No /proc (not Linux): the check before the open stands alone.
    return null
  }
}

export interface LocalAnswer {
  statusCode: 200 | 206 | 304
  headers: Record<string, string>
  /** The bytes to send, or null (a 304, a HEAD). */
  body: Readable | null
}

/**
 * The answer to a GET or HEAD of an opened file, with HTTP's ranges and conditionals. Takes the
 * handle over: it is closed here or by the stream it returns. Throws 412 and 416 as coded errors.
 */
export async function answerFile (
  file: OpenFile, headers: IncomingHttpHeaders, method: 'GET' | 'HEAD'
): Promise<LocalAnswer> {
  const etag = `W/"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`
  const lastModified = new Date(file.mtimeMs).toUTCString()
  const common = { 'cache-control': CACHE_CONTROL, etag, 'last-modified': lastModified }
  const verdict = preconditions(headers, { etag, lastModified: file.mtimeMs })
  const range = verdict === null ? byteRange(headers, file.size) : null
  if (verdict !== null || range === 'unsatisfiable' || method === 'HEAD') await file.handle.close()
  if (verdict === 304) return { statusCode: 304, headers: common, body: null }
  if (verdict === 412) throw withDetail(new errors.LG_ERR_MEDIA_PRECONDITION_FAILED(), 'local-precondition')
  if (range === 'unsatisfiable') {
    throw Object.assign(withDetail(new errors.LG_ERR_MEDIA_RANGE_NOT_SATISFIABLE(), 'local-range'),
      { contentRange: `bytes */${file.size}` })
  }
  const { start, end } = range ?? { start: 0, end: file.size - 1 }
  const out: Record<string, string> = {
    ...common,
    'accept-ranges': 'bytes',
    'content-length': String(Math.max(0, end - start + 1)),
    ...typeHeaders(mime.getType(file.path)),
    ...(range === null ? {} : { 'content-range': `bytes ${start}-${end}/${file.size}` })
  }
  const statusCode = range === null ? 200 : 206
  if (method === 'HEAD' || end < start) {
    if (method !== 'HEAD') await file.handle.close()
    return { statusCode, headers: out, body: null }
  }
  const bytes = file.handle.createReadStream({ start, end, autoClose: true })
  return { statusCode, headers: out, body: bytes.pipe(exactly(end - start + 1, bytes)) }
}

/**
 * Passes `length` bytes on, and fails if fewer come (the file shrank while it was sent): the
 * response is then cut off at once instead of leaving the client waiting on a short body.
 */
function exactly (length: number, source: Readable): Transform {
  let seen = 0
  const check = new Transform({
    transform (chunk: Buffer, _encoding, done) {
      seen += chunk.length
      done(null, chunk)
    },
    flush (done) {
      done(seen === length ? null : new Error(`the file shrank: ${seen} of ${length} bytes`))
    }
  })
  // A reader that fails (or is destroyed) takes the check down with it, and the other way round.
  source.on('error', (err) => check.destroy(err))
  check.on('close', () => source.destroy())
  return check
}

export function isInside (root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep)
}

/** The real path of a directory, or null when it is gone. */
export async function realDirectory (dir: string): Promise<string | null> {
  try {
    return await realpath(dir)
  } catch {
    return null
  }
}
