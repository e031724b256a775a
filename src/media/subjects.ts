import { createHash } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { storeCall, type IdentityStore } from '../identity/store.js'
import { lookupObject, type CallerCredential } from '../scope/resolve.js'
import { LG_ERR_UPSTREAM_LOOKUP_FAILED, withDetail } from '../errors.js'
import { collectReferences, TooManyReferences } from './references.js'

// What a task (or a project) references, as its caller sees it. Label Studio is asked with the
// caller's own credential: the answer says both that the caller may read the task and which files
// it names. It is remembered briefly, per caller, in the identity store.

export type SubjectKind = 'task' | 'project'

export interface Subject {
  project: number
  uris: ReadonlySet<string>
  how: 'cache' | 'lookup'
}

export interface SubjectOptions {
  upstreamUrl: string
  dispatcher: Dispatcher
  store: IdentityStore
  ttlMs: number
  maxBytes: number
}

/** Tasks are asked for unresolved, so that their data holds the URIs as imported. */
const PATHS: Readonly<Record<SubjectKind, string>> = {
  task: '/api/tasks/{id}/?resolve_uri=false',
  project: '/api/projects/{id}/'
}

const CACHE = 'media-cache-error'

export class Subjects {
  readonly #options: SubjectOptions

  constructor (options: SubjectOptions) {
    this.#options = options
  }

  /** The subject as `caller` sees it; null when Label Studio does not show it to them. */
  async read (kind: SubjectKind, id: number, caller: CallerCredential, requestId: string): Promise<Subject | null> {
    const { store, ttlMs } = this.#options
    const key = `media:${kind}:${id}:${callerDigest(caller)}`
    const cached = ttlMs > 0 ? parseCached(await storeCall(() => store.recall(key), CACHE)) : null
    if (cached !== null) return { ...cached, how: 'cache' }
    const url = new URL(PATHS[kind].replace('{id}', String(id)), this.#options.upstreamUrl)
    const answer = await lookupObject(url, `${kind}-media`, caller, requestId, this.#options)
    if (answer === null) return null
    const project = kind === 'project' ? id : answer.project
    if (typeof project !== 'number' || !Number.isSafeInteger(project) || project < 0) {
      throw withDetail(new LG_ERR_UPSTREAM_LOOKUP_FAILED(), `lookup-${kind}-media-has-no-project`)
    }
    let uris: Set<string>
    try {
      // A task's files are in its data; a project's, in its labelling configuration and instructions.
      uris = collectReferences(kind === 'task' ? answer.data : [answer.label_config, answer.expert_instruction])
    } catch (err) {
      if (!(err instanceof TooManyReferences)) throw err
      throw withDetail(new LG_ERR_UPSTREAM_LOOKUP_FAILED(), `lookup-${kind}-media-too-many-references`)
    }
    if (ttlMs > 0) {
      const text = JSON.stringify({ project, uris: [...uris] })
      await storeCall(() => store.remember(key, text, ttlMs), CACHE)
    }
    return { project, uris, how: 'lookup' }
  }
}

/** One caller's key: their credential is never stored, only a digest of it. */
function callerDigest (caller: CallerCredential): string {
  return createHash('sha256').update(`${caller.authorization ?? ''}\n${caller.cookie ?? ''}`).digest('hex')
}

function parseCached (text: string | null): Omit<Subject, 'how'> | null {
  if (text === null) return null
  try {
    const value = JSON.parse(text) as { project?: unknown, uris?: unknown }
    if (typeof value.project !== 'number' || !Array.isArray(value.uris)) return null
    if (!value.uris.every((u) => typeof u === 'string')) return null
    return { project: value.project, uris: new Set(value.uris as string[]) }
  } catch {
    return null
  }
}
