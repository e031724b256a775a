import { realpath, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import * as errors from '../errors.js'
import { withDetail } from '../errors.js'

// Files on a local disk that Label Studio names by path: local-files storage (`?d=` relative to its
// document root) and uploads (`/data/upload/<project>/<name>`). A path is read once (the query or
// path decoding the request already had), joined to its root, resolved with every `..` and
// symbolic link, and must still be inside the root; otherwise it is refused.

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
): Promise<string> {
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
  const info = await stat(real)
  if (!info.isFile()) throw withDetail(new errors.LG_ERR_MEDIA_NOT_FOUND(), 'local-not-a-file')
  return real
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

/** A real path below `root` as the URL path that `send` reads (each segment encoded). */
export function sendPath (root: string, real: string): string {
  return '/' + relative(root, real).split(sep).map(encodeURIComponent).join('/')
}
