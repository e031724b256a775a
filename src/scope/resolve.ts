import { request as undiciRequest, type Dispatcher } from 'undici'
import { storeCall, type IdentityStore } from '../identity/store.js'
import type { ProjectKind } from '../policy/scope.js'
import { discard, readLimited } from '../proxy/bodies.js'
import { mapUpstreamError } from '../proxy/upstream-errors.js'
import { LG_ERR_UPSTREAM_LOOKUP_FAILED, withDetail } from '../errors.js'

// Which project a Label Studio object belongs to. Label Studio is asked for the object with the
// caller's own upstream credential, so that the gateway learns nothing the caller could not read;
// positive answers are cached in the identity store (Redis: shared by every replica).

/** Where Label Studio answers one object of each kind. */
const LOOKUP_PATHS: Readonly<Record<Exclude<ProjectKind, 'project'>, string>> = {
  task: '/api/tasks/{id}/',
  annotation: '/api/annotations/{id}/',
  prediction: '/api/predictions/{id}/',
  draft: '/api/drafts/{id}/',
  view: '/api/dm/views/{id}/',
  comment: '/api/comments/{id}/',
  review: '/api/annotation-reviews/{id}/',
  ml_backend: '/api/ml/{id}'
}

/** The fields of an answer that lead to its project, in order: the project itself, or an object that has one. */
const LEADS: ReadonlyArray<readonly [string, ProjectKind]> = [
  ['project', 'project'], ['task', 'task'], ['annotation', 'annotation']
]

/** The log detail of a cache failure. */
const CACHE = 'project-cache-error'

/** How far a chain of leads is followed (a review names an annotation, which names a task). */
const MAX_HOPS = 3

/** What the caller presents to Label Studio: the credential its own request would be forwarded with. */
export interface CallerCredential { authorization: string | null, cookie: string | null }

export interface Placement {
  /** The object's project, or null when Label Studio does not show the object to the caller. */
  project: number | null
  how: 'given' | 'cache' | 'lookup'
}

export interface ResolverOptions {
  upstreamUrl: string
  dispatcher: Dispatcher
  store: IdentityStore
  ttlMs: number
  maxBytes: number
}

export class ProjectResolver {
  readonly #options: ResolverOptions

  constructor (options: ResolverOptions) {
    this.#options = options
  }

  async place (kind: ProjectKind, id: number, caller: CallerCredential, requestId: string): Promise<Placement> {
    if (kind === 'project') return { project: id, how: 'given' }
    return await this.#place(kind, id, caller, requestId, 0)
  }

  async #place (
    kind: Exclude<ProjectKind, 'project'>, id: number, caller: CallerCredential, requestId: string, hops: number
  ): Promise<Placement> {
    const key = `object:${kind}:${id}`
    const caching = this.#options.ttlMs > 0
    const { store, ttlMs } = this.#options
    const text = caching ? await storeCall(() => store.recall(key), CACHE) : null
    if (text !== null && /^[0-9]{1,15}$/.test(text)) return { project: Number(text), how: 'cache' }
    const answer = await this.#lookup(kind, id, caller, requestId)
    if (answer === null) return { project: null, how: 'lookup' }
    for (const [field, leads] of LEADS) {
      const value = answer[field]
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) continue
      if (leads === 'project') {
        if (caching) await storeCall(() => store.remember(key, String(value), ttlMs), CACHE)
        return { project: value, how: 'lookup' }
      }
      if (hops + 1 >= MAX_HOPS || leads === kind) break
      const found = await this.#place(leads, value, caller, requestId, hops + 1)
      if (found.project !== null && caching) {
        await storeCall(() => store.remember(key, String(found.project), ttlMs), CACHE)
      }
      return { project: found.project, how: 'lookup' }
    }
    throw withDetail(new LG_ERR_UPSTREAM_LOOKUP_FAILED(), `lookup-${kind}-has-no-project`)
  }

  async #lookup (
    kind: Exclude<ProjectKind, 'project'>, id: number, caller: CallerCredential, requestId: string
  ): Promise<Record<string, unknown> | null> {
    const url = new URL(LOOKUP_PATHS[kind].replace('{id}', String(id)), this.#options.upstreamUrl)
    return await lookupObject(url, kind, caller, requestId, this.#options)
  }
}

/**
 * An object of Label Studio as the caller sees it; null when Label Studio does not show it to them.
 * `label` names the question in the lookup header and in log details.
 */
export async function lookupObject (
  url: URL, label: string, caller: CallerCredential, requestId: string,
  options: { dispatcher: Dispatcher, maxBytes: number }
): Promise<Record<string, unknown> | null> {
  let response: Dispatcher.ResponseData
  try {
    response = await undiciRequest(url, {
      dispatcher: options.dispatcher,
      method: 'GET',
      headers: {
        accept: 'application/json',
        'x-request-id': requestId,
        // Tells Label Studio's logs (and tests) that the gateway asked, not the client.
        'x-labelgate-lookup': label,
        ...(caller.authorization === null ? {} : { authorization: caller.authorization }),
        ...(caller.cookie === null ? {} : { cookie: caller.cookie })
      }
    })
  } catch (err) {
    throw mapUpstreamError(err)
  }
  const status = response.statusCode
  if (status === 401 || status === 403 || status === 404) {
    discard(response.body)
    return null
  }
  if (status !== 200) {
    discard(response.body)
    throw withDetail(new LG_ERR_UPSTREAM_LOOKUP_FAILED(), `lookup-${label}-status-${status}`)
  }
  let raw: Buffer | null
  try {
    raw = await readLimited(response.body, options.maxBytes)
  } catch (err) {
    throw mapUpstreamError(err)
  }
  // Read tolerantly: task data may hold anything (64-bit ids, deep nesting) that the gateway's
  // strict request parser refuses.
  let value: unknown = null
  try {
    value = raw === null ? null : JSON.parse(raw.toString('utf8'))
  } catch {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw withDetail(new LG_ERR_UPSTREAM_LOOKUP_FAILED(), `lookup-${label}-not-an-object`)
  }
  return value as Record<string, unknown>
}
