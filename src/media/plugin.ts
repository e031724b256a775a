import fp from 'fastify-plugin'
import { Agent } from 'undici'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig, StorageBackend } from '../config/types.js'
import type { IdentityStore } from '../identity/store.js'
import type { GatewayMetrics } from '../metrics.js'
import type { PolicySet } from '../policy/compile.js'
import { storeCall } from '../identity/store.js'
import type { ProjectResolver } from '../scope/resolve.js'
import { enforceProjects, outsideError } from '../scope/enforce.js'
import * as errors from '../errors.js'
import { withDetail } from '../errors.js'
import { fetchObject } from './fetch.js'
import { explicitSuffix, httpDate, preconditions, storageRequestHeaders, suffixLength } from './http.js'
import { MAX_LINK_LENGTH, mintLink, verifyLink, type LinkClaims } from './links.js'
import { answerFile, isInside, realDirectory, resolveInside, type OpenFile } from './local.js'
import { signAzureRequest, signBucketRequest } from './sign.js'
import { Subjects, type SubjectKind } from './subjects.js'
import { decodeFileUri, parseStorageUri, type StorageUri } from './uri.js'

// The gateway answers Label Studio's media routes itself: storage resolvers, local files, uploads
// and its own signed links. Buckets stay private and their credentials never leave the gateway; a
// caller gets an object only when their role may read the task, the task references the object, and
// a backend configured for the task's project serves it. Nothing is fetched before all of that holds.

export interface MediaOptions {
  storage: GatewayConfig['storage']
  upstream: GatewayConfig['upstream']
  filters: GatewayConfig['filters']
  publicOrigin: string | null
  store: IdentityStore
  resolver: ProjectResolver
  /** The connection pool to Label Studio, for reading tasks. */
  upstreamAgent: Agent
  metrics: GatewayMetrics
  /** The roles, for the role a link's user has when the link is used. */
  policies: () => PolicySet
  defaultRole: string | null
}

type RemoteBackend = Exclude<StorageBackend, { type: 'local' }>

const SCHEMES: Readonly<Record<RemoteBackend['type'], StorageUri['scheme']>> = {
  s3: 's3', gcs: 'gs', azure: 'azure-blob'
}

function placesOf (backend: RemoteBackend): readonly string[] {
  return backend.type === 'azure' ? backend.containers : backend.buckets
}

const STRICT_ID = /^[0-9]{1,15}$/

async function media (app: FastifyInstance, options: MediaOptions): Promise<void> {
  const { storage } = options
  const remote = storage.backends.filter((b): b is RemoteBackend => b.type !== 'local')
  const local = storage.backends.filter((b) => b.type === 'local')
  // Storages get a pool of their own, with their own limits: a slow bucket never holds Label Studio's connections.
  const agent = new Agent({
    connect: { timeout: storage.connectTimeoutMs },
    headersTimeout: storage.headersTimeoutMs,
    bodyTimeout: storage.headersTimeoutMs,
    keepAliveTimeout: 4_000
  })
  app.addHook('onClose', async () => { await agent.close() })
  const subjects = new Subjects({
    upstreamUrl: options.upstream.url,
    dispatcher: options.upstreamAgent,
    store: options.store,
    ttlMs: storage.referenceCacheTtlMs,
    maxBytes: options.filters.responseMaxBytes
  })

  function backendFor (uri: StorageUri): RemoteBackend | null {
    return remote.find((b) => SCHEMES[b.type] === uri.scheme && placesOf(b).includes(uri.bucket)) ?? null
  }

  function sign (backend: RemoteBackend, method: 'GET' | 'HEAD', uri: StorageUri, headers: Record<string, string>) {
    return backend.type === 'azure'
      ? signAzureRequest(backend, method, uri.bucket, uri.key, headers)
      : signBucketRequest(backend, method, uri.bucket, uri.key, headers)
  }

  /** Fetches the object from its backend and sends it: the last step, once every check has passed. */
  async function deliver (request: FastifyRequest, reply: FastifyReply, backend: RemoteBackend, uri: StorageUri) {
    const method = request.method === 'HEAD' ? 'HEAD' : 'GET'
    const headers = storageRequestHeaders(request.headers)
    const observed = { statusCode: null as number | null, ms: null as number | null }
    if (request.gate.media) request.gate.media.storage = observed
    const start = performance.now()
    let asked = start
    const fetchOptions = {
      dispatcher: agent,
      timeoutMs: storage.timeoutMs,
      onStatus: (status: number) => {
        observed.statusCode = status
        options.metrics.storageRequests.inc({ backend: backend.name, status: String(status) })
        options.metrics.storageSeconds.observe({ backend: backend.name }, (performance.now() - asked) / 1000)
      }
    }
    try {
      let expected: string | null = null
      const suffix = suffixLength(headers.range)
      if (suffix !== null) {
        const head = await fetchObject(sign(backend, 'HEAD', uri, {}), 'HEAD', fetchOptions)
        const length = Number(head.headers['content-length'] ?? NaN)
        const range = Number.isSafeInteger(length) ? explicitSuffix(suffix, length) : undefined
        if (range === null) {
          throw Object.assign(withDetail(new errors.LG_ERR_MEDIA_RANGE_NOT_SATISFIABLE(), 'empty-suffix'),
            { contentRange: `bytes */${length}` })
        }
        // A size the storage does not state: the whole object is sent, as HTTP allows.
        if (range === undefined) delete headers.range
        else headers.range = range
        // The object must not change between the two requests: the range was computed for this one.
        expected = head.headers.etag ?? null
        if (expected !== null) headers['if-match'] = expected
      }
      asked = performance.now()
      observed.statusCode = null
      const answer = await fetchObject(sign(backend, method, uri, headers), method, fetchOptions)
      // Not every store honours If-Match: a suffix range read from another version is refused here.
      if (expected !== null && answer.headers.etag !== expected) {
        answer.body?.on('error', () => {}).destroy()
        throw withDetail(new errors.LG_ERR_MEDIA_PRECONDITION_FAILED(), 'changed-during-suffix-range')
      }
      // The client's conditionals, evaluated on the version the storage sent (see storageRequestHeaders).
      const version = { etag: answer.headers.etag ?? null, lastModified: httpDate(answer.headers['last-modified']) }
      const verdict = preconditions(request.headers, version)
      if (verdict !== null) {
        // Its bytes are not wanted: the transfer is cut off, and undici's abort is expected.
        answer.body?.on('error', () => {}).destroy()
        if (verdict === 412) throw withDetail(new errors.LG_ERR_MEDIA_PRECONDITION_FAILED(), 'precondition')
        const kept = ['cache-control', 'etag', 'last-modified'].filter((name) => answer.headers[name] !== undefined)
        reply.code(304).headers(Object.fromEntries(kept.map((name) => [name, answer.headers[name]])))
        return await reply.send()
      }
      reply.code(answer.statusCode).headers(answer.headers)
      return await reply.send(answer.body ?? undefined)
    } catch (err) {
      if (observed.statusCode === null) options.metrics.storageRequests.inc({ backend: backend.name, status: 'error' })
      const range = (err as { contentRange?: string }).contentRange
      if (range !== undefined) reply.header('content-range', range)
      throw err
    } finally {
      observed.ms = Math.round((performance.now() - start) * 10) / 10
    }
  }

  async function resolveRoute (kind: SubjectKind, request: FastifyRequest, reply: FastifyReply) {
    const gate = request.gate
    const rule = gate.decision?.rule ?? null
    if (rule === null) throw withDetail(new errors.LG_ERR_POLICY_DENIED(request.method, 'this path'), 'no-rule')
    await enforceProjects(request, rule, null, options.resolver)
    const id = wholeNumber((request.params as { id?: string }).id)
    const query = new URLSearchParams(gate.target?.query ?? '')
    const values = query.getAll('fileuri')
    if (values.length !== 1) {
      throw withDetail(new errors.LG_ERR_MEDIA_BAD_URI('send exactly one fileuri'), 'fileuri-count')
    }
    const uri = decodeFileUri(values[0] ?? '')
    if (uri === null) throw withDetail(new errors.LG_ERR_MEDIA_BAD_URI('fileuri names no storage object'), 'fileuri')
    const backend = backendFor(uri)
    gate.media = { via: kind, backend: backend?.name ?? null, id, how: null, storage: null }
    if (backend === null) throw withDetail(new errors.LG_ERR_MEDIA_NO_BACKEND(), 'no-backend-for-bucket')
    const caller = { authorization: gate.principal?.upstreamAuthorization ?? null, cookie: gate.upstreamCookie }
    const subject = await subjects.read(kind, id, caller, request.id)
    if (subject === null) throw withDetail(outsideError(rule), `media-${kind}-not-shown`)
    gate.media.how = subject.how
    const projects = gate.principal?.projects ?? []
    if (rule.projectsBound && projects !== 'all' && !projects.includes(subject.project)) {
      throw withDetail(outsideError(rule), `media-${kind}-outside: project ${subject.project}`)
    }
    if (!serves(backend, subject.project)) {
      throw withDetail(new errors.LG_ERR_MEDIA_NO_BACKEND(), 'backend-not-for-project')
    }
    if (!subject.uris.has(uri.uri)) throw withDetail(new errors.LG_ERR_MEDIA_NOT_REFERENCED(), 'not-referenced')
    const link = query.getAll('signed_link')
    if (link.length > 1 || (link.length === 1 && !['1', 'true', '0', 'false'].includes(link[0] ?? ''))) {
      throw withDetail(new errors.LG_ERR_MEDIA_BAD_URI('signed_link takes true or false'), 'signed-link-value')
    }
    // A link stays tied to the task's project: its user and its backend must still reach it when used.
    if (link[0] === '1' || link[0] === 'true') return mint(request, backend, uri, subject.project)
    return await deliver(request, reply, backend, uri)
  }

  function mint (request: FastifyRequest, backend: RemoteBackend, uri: StorageUri, project: number) {
    const key = storage.linkKeys[0]
    if (!backend.signedLinks || key === undefined) {
      throw withDetail(new errors.LG_ERR_MEDIA_LINK_INVALID('this storage gives no links'), 'links-off')
    }
    const expires = Math.floor((Date.now() + storage.linkTtlMs) / 1000)
    const principal = request.gate.principal
    const claims = { user: principal?.user ?? '', names: principal?.names ?? [], project, backend: backend.name }
    const token = mintLink({ ...claims, uri: uri.uri, expires }, key)
    if (token.length > MAX_LINK_LENGTH) {
      throw withDetail(new errors.LG_ERR_MEDIA_LINK_INVALID('the file\'s name is too long for a link'), 'link-too-long')
    }
    return {
      url: `${origin(request, options.publicOrigin)}/-/media/${token}`,
      expires_at: new Date(expires * 1000).toISOString()
    }
  }

  async function linkRoute (request: FastifyRequest, reply: FastifyReply) {
    const token = (request.params as { token?: string }).token ?? ''
    const verified = verifyLink(token, storage.linkKeys, Math.floor(Date.now() / 1000))
    if ('problem' in verified) {
      throw withDetail(new errors.LG_ERR_MEDIA_LINK_INVALID(verified.problem), `link-${verified.problem}`)
    }
    const { claims } = verified
    // For the access line: whose link it is. The link itself is the credential; nothing goes to Label Studio.
    request.gate.principal = {
      user: claims.user,
      role: null,
      tokenId: null,
      projects: [],
      names: claims.names,
      upstreamAuthorization: null,
      via: 'none'
    }
    const backend = remote.find((b) => b.name === claims.backend)
    const uri = parseStorageUri(claims.uri)
    request.gate.media = { via: 'link', backend: backend?.name ?? null, id: null, how: null, storage: null }
    // A key that signed this link may outlive the backend's links being turned off, or the bucket moving.
    if (backend === undefined || !backend.signedLinks || uri === null || backendFor(uri) !== backend ||
      claims.project === null || !serves(backend, claims.project)) {
      throw withDetail(new errors.LG_ERR_MEDIA_LINK_INVALID('its storage gives no links'), 'link-backend')
    }
    await checkLinkUser(claims)
    return await deliver(request, reply, backend, uri)
  }

  /** The user of a link must not be disabled under any name, and must still reach the link's project. */
  async function checkLinkUser (claims: LinkClaims): Promise<void> {
    const bindings = await storeCall(async () => await Promise.all(claims.names.map(async (name) =>
      await options.store.getUser(name))), 'link-user')
    if (bindings.some((b) => b?.disabled === true)) {
      throw withDetail(new errors.LG_ERR_MEDIA_LINK_INVALID('its user is disabled'), 'link-user-disabled')
    }
    // The role the user has now, as authentication would give it: bound roles must still reach the project.
    const binding = bindings.find((b) => b !== null) ?? null
    const role = binding?.role ?? options.defaultRole
    const compiled = role === null ? undefined : options.policies().roles.get(role)
    const projects = binding?.projects ?? []
    const reaches = compiled !== undefined && (compiled.projects === 'all' || projects === 'all' ||
      (claims.project !== null && projects.includes(claims.project)))
    if (!reaches) {
      throw withDetail(new errors.LG_ERR_MEDIA_LINK_INVALID('its user no longer reaches the project'), 'link-project')
    }
  }

  async function localRoute (request: FastifyRequest, reply: FastifyReply) {
    const gate = request.gate
    const rule = gate.decision?.rule ?? null
    if (rule === null) throw withDetail(new errors.LG_ERR_POLICY_DENIED(request.method, 'this path'), 'no-rule')
    gate.media = { via: 'local', backend: null, id: null, how: null, storage: null }
    const values = new URLSearchParams(gate.target?.query ?? '').getAll('d')
    if (values.length !== 1) throw withDetail(new errors.LG_ERR_MEDIA_BAD_URI('send exactly one d'), 'd-count')
    if (storage.localFilesRoot === null) throw withDetail(new errors.LG_ERR_MEDIA_NO_BACKEND(), 'no-local-files-root')
    const projects = rule.projectsBound ? gate.principal?.projects ?? [] : 'all'
    const folders: Array<{ name: string, dir: string }> = []
    for (const backend of local) {
      const dir = await realDirectory(backend.path)
      if (dir !== null && reaches(backend.projects, projects)) folders.push({ name: backend.name, dir })
    }
    const file = await resolveInside(storage.localFilesRoot, values[0] ?? '', folders.map((f) => f.dir))
    gate.media.backend = folders.find((f) => isInside(f.dir, file.path))?.name ?? null
    return await sendFile(request, reply, file)
  }

  async function uploadRoute (request: FastifyRequest, reply: FastifyReply, root: string) {
    const gate = request.gate
    const rule = gate.decision?.rule ?? null
    if (rule === null) throw withDetail(new errors.LG_ERR_POLICY_DENIED(request.method, 'this path'), 'no-rule')
    await enforceProjects(request, rule, null, options.resolver)
    const { project, file } = request.params as { project?: string, file?: string }
    const id = wholeNumber(project)
    gate.media = { via: 'upload', backend: null, id, how: null, storage: null }
    const dir = `${root}/${id}`
    return await sendFile(request, reply, await resolveInside(dir, file ?? ''))
  }

  const resolvers: Array<[SubjectKind, string]> = [['task', 'tasks'], ['project', 'projects']]
  for (const [kind, segment] of resolvers) {
    for (const action of ['resolve', 'presign']) {
      for (const slash of ['/', '']) {
        app.route({
          method: ['GET', 'HEAD'],
          url: `/${segment}/:id/${action}${slash}`,
          handler: async (request, reply) => await resolveRoute(kind, request, reply)
        })
      }
    }
  }
  for (const url of ['/data/local-files/', '/data/local-files']) {
    app.route({ method: ['GET', 'HEAD'], url, handler: localRoute })
  }
  const uploads = storage.uploadsRoot
  // Without a folder to read, uploads go to Label Studio, which checks them against the project too.
  if (uploads !== null) {
    app.route({
      method: ['GET', 'HEAD'],
      url: '/data/upload/:project/:file',
      handler: async (request, reply) => await uploadRoute(request, reply, uploads)
    })
  }
  app.route({ method: ['GET', 'HEAD'], url: '/-/media/:token', config: { internal: true }, handler: linkRoute })
}

/** Sends an opened local file with HTTP's ranges and conditionals, and the media headers. */
async function sendFile (request: FastifyRequest, reply: FastifyReply, file: OpenFile) {
  try {
    const answer = await answerFile(file, request.headers, request.method === 'HEAD' ? 'HEAD' : 'GET')
    reply.code(answer.statusCode).headers(answer.headers)
    return await reply.send(answer.body ?? undefined)
  } catch (err) {
    const range = (err as { contentRange?: string }).contentRange
    if (range !== undefined) reply.header('content-range', range)
    throw err
  }
}

function serves (backend: StorageBackend, project: number): boolean {
  return backend.projects === 'all' || backend.projects.includes(project)
}

function reaches (backend: StorageBackend['projects'], caller: 'all' | readonly number[]): boolean {
  if (backend === 'all' || caller === 'all') return true
  return backend.some((p) => caller.includes(p))
}

function wholeNumber (text: string | undefined): number {
  if (text === undefined || !STRICT_ID.test(text)) {
    throw withDetail(new errors.LG_ERR_MEDIA_BAD_URI('the id is not a whole number'), 'media-id')
  }
  return Number(text)
}

function origin (request: FastifyRequest, publicOrigin: string | null): string {
  return publicOrigin ?? `https://${request.headers.host ?? 'localhost'}`
}

export const mediaPlugin = fp(media, {
  name: 'labelgate-media', fastify: '5.x', dependencies: ['labelgate-access']
})
