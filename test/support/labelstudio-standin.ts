// Test scaffolding: a stand-in for Label Studio, used as the gateway's upstream in tests. Label Studio
// itself cannot run in the test environment, so this answers its routes over real HTTP with the shapes
// of the shared spec and example exports, authenticates like it, and records every request it receives.

import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  DEFAULT_STANDIN_USERS, LOGIN_PAGE, addAnnotation, addDraft, addPrediction, addProject, buildTask, buildUser,
  buildVersion, createStandInState, importTasks, intParam, isJsonObject, now, paginate, projectView, removeProject,
  removeTask, taskTotals, taskView, tasksOf
} from './labelstudio-standin-data.js'
import type { JsonObject, JsonValue, StandInState, StandInUser, Table } from './labelstudio-standin-data.js'
import { csrfFailure, csrfPage, loginPage, newCsrfToken, parseCookies, passwordOf } from './labelstudio-standin-browser.js'
import { UPLOADS, labelStudioHeaders, resolveStorageUris } from './labelstudio-standin-web.js'
import {
  FORM_TYPE, HTML_TYPE, HttpFailure, JSON_TYPE, NOT_FOUND, authFailure, authenticate, caller, dataObject, detail, json,
  must, noContent, parseBody, patchRow, requireFields
} from './labelstudio-standin-http.js'
import type { Auth, Handler, Reply, Route, RouteContext } from './labelstudio-standin-http.js'

export { DEFAULT_STANDIN_USERS }
export type { JsonObject, JsonValue, StandInState, StandInUser }

export interface StandInBehaviour {
  /** Milliseconds to wait, once the body is read, before answering headers. */
  delayMs: number
  /** Reset the connection (TCP RST) instead of answering. */
  reset: boolean
  /** Answer every request with this status and a JSON `{"detail": ...}` body. */
  failStatus: number | null
  /** Headers added to every answer, over the stand-in's own (to play a Label Studio that sends others). */
  headers: Record<string, string>
}

export interface StandInOptions {
  users?: readonly StandInUser[]
  behaviour?: Partial<StandInBehaviour>
  /** Directory of the Label Studio reference data; defaults to <checkout>/../shared/labelstudio. */
  dataDir?: string
}

export interface RecordedRequest {
  method: string
  /** The raw request target exactly as received. */
  url: string
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
  user: StandInUser | null
}

export interface StandIn {
  url: string
  port: number
  /** A Label Studio access JWT (Bearer) for a user, valid for `seconds`. */
  accessToken: (userId: number, seconds?: number) => string
  /** The stand-in's data, for tests that need the ids of one project's objects. */
  state: StandInState
  requests: RecordedRequest[]
  behaviour: StandInBehaviour
  clear: () => void
  close: () => Promise<void>
}

// The Data Manager task list: `{tasks, total, total_annotations, total_predictions}`, `page` and `page_size`.
function listTasks (ctx: RouteContext): Reply {
  const project = intParam(ctx.query, 'project')
  if (project !== undefined) must(ctx.state.projects, project)
  const tasks = tasksOf(ctx.state, project)
  const size = intParam(ctx.query, 'page_size') ?? 100
  const page = intParam(ctx.query, 'page') ?? 1
  return json(200, { tasks: tasks.slice((page - 1) * size, page * size), ...taskTotals(tasks) })
}

function createTask (ctx: RouteContext): Reply {
  const data = dataObject(ctx)
  requireFields(data, ['data', 'project'])
  const project = must(ctx.state.projects, typeof data.project === 'number' ? data.project : undefined).id ?? null
  const task = ctx.state.tasks.insert(buildTask({ data: data.data ?? {}, meta: data.meta ?? {}, project }))
  return json(201, taskView(ctx.state, task))
}

function listProjects (ctx: RouteContext): Reply {
  // ProjectFilterSet's `ids`: a comma-separated list of project ids.
  const ids = ctx.query.get('ids')?.split(',').map(Number)
  const rows = ctx.state.projects.where((p) => ids === undefined || ids.includes(Number(p.id)))
    .map((p) => projectView(ctx.state, p))
  const page = paginate(rows, ctx.query, `${ctx.origin}${ctx.pathname}`)
  if (page === null) throw new HttpFailure(404, { detail: 'Invalid page.' })
  return json(200, page)
}

function createPrediction (ctx: RouteContext): Reply {
  const data = dataObject(ctx)
  requireFields(data, ['task', 'result'])
  const task = ctx.state.tasks.find(typeof data.task === 'number' ? data.task : undefined)
  const error = `Invalid pk "${String(data.task)}" - object does not exist.`
  if (task === undefined) throw new HttpFailure(400, { task: [error] })
  return json(201, addPrediction(ctx.state, task, data))
}

function listPredictions (ctx: RouteContext): Reply {
  const task = intParam(ctx.query, 'task')
  const project = intParam(ctx.query, 'project')
  return json(200, ctx.state.predictions.where((p) =>
    (task === undefined || p.task === task) && (project === undefined || p.project === project)))
}

function nextTask (ctx: RouteContext): Reply {
  const project = must(ctx.state.projects, ctx.params.id)
  const task = tasksOf(ctx.state, Number(project.id)).find((t) => t.is_labeled !== true)
  if (task === undefined) {
    const message = `There are still some tasks to complete for the user=${caller(ctx).email}, ` +
      'but they seem to be locked by another user.'
    throw new HttpFailure(404, { detail: message })
  }
  return json(200, { ...task, annotations: [], queue: 'Not labeled tasks queue' })
}

function importProject (ctx: RouteContext): Reply {
  const project = Number(must(ctx.state.projects, ctx.params.id).id)
  const data = ctx.data()
  const items = (Array.isArray(data) ? data : data === undefined ? [] : [data]).filter(isJsonObject)
  return json(201, importTasks(ctx.state, project, items, caller(ctx).id))
}

function exportProject (ctx: RouteContext): Reply {
  const project = must(ctx.state.projects, ctx.params.id)
  const format = (ctx.query.get('exportType') ?? ctx.query.get('export_type') ?? 'JSON').toUpperCase()
  if (format !== 'JSON') throw new HttpFailure(400, { detail: `Export type ${format} is not served by the stand-in` })
  const tasks = tasksOf(ctx.state, Number(project.id))
  const name = `project-${String(project.id)}-at-${now().slice(0, 19).replace(/:/g, '-')}.json`
  return json(200, tasks, { 'content-disposition': `attachment; filename="${name}"` })
}

/** The login or signup form, with a new csrftoken cookie unless the browser has one. */
function formPage (ctx: RouteContext, action: string): Reply {
  const csrf = parseCookies(ctx.headers.cookie).csrftoken ?? newCsrfToken()
  return {
    status: 200,
    headers: { 'content-type': HTML_TYPE, 'set-cookie': `csrftoken=${csrf}; expires=Thu, 02 Dec 2027 10:00:00 GMT; Max-Age=31449600; Path=/; SameSite=Lax` },
    payload: action === '/user/login/' ? LOGIN_PAGE.replace('value="standin"', `value="${csrf}"`) : loginPage(csrf, action)
  }
}

/** Django's login (and signup) views: CSRF-checked form posts that open a session. */
function signIn (ctx: RouteContext, signup: boolean): Reply {
  const data = ctx.data()
  const form = isJsonObject(data) ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, String(v)])) : {}
  const failure = csrfFailure(ctx.headers, form)
  if (failure !== null) return { status: 403, headers: { 'content-type': HTML_TYPE }, payload: csrfPage(failure) }
  let user = ctx.state.users.find((u) => u.email === form.email)
  if (signup && user === undefined && form.email !== undefined && form.password !== undefined) {
    const created = {
      id: Math.max(...ctx.state.users.map((u) => u.id)) + 1, email: form.email, token: newCsrfToken().slice(0, 40), password: form.password
    }
    ctx.state.users.push(created)
    user = created
  }
  if (user === undefined || form.password !== passwordOf(user)) {
    return { status: 200, headers: { 'content-type': HTML_TYPE }, payload: '<p>The email or password you entered is incorrect.</p>' }
  }
  const session = ctx.state.browser.open(user.id)
  return {
    status: 302,
    headers: { location: '/', 'set-cookie': `sessionid=${session}; expires=Thu, 17 Dec 2026 10:00:00 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax` },
    payload: ''
  }
}

type View = (state: StandInState, row: JsonObject) => JsonValue
type Remove = (state: StandInState, id: number) => void

function crud (table: (s: StandInState) => Table, view: View = (_s, row) => row,
  remove: Remove = (s, id) => { table(s).rows.delete(id) }): { GET: Handler, PATCH: Handler, DELETE: Handler } {
  const one = (ctx: RouteContext): JsonObject => must(table(ctx.state), ctx.params.id)
  return {
    GET: (ctx) => json(200, view(ctx.state, one(ctx))),
    PATCH: (ctx) => {
      const row = one(ctx)
      const by = 'updated_by' in row ? { updated_by: caller(ctx).id } : {}
      return json(200, view(ctx.state, patchRow(row, dataObject(ctx), by)))
    },
    DELETE: (ctx) => {
      remove(ctx.state, Number(one(ctx).id))
      return noContent()
    }
  }
}

/** One task; its storage URIs become resolver links unless the client asks `resolve_uri=false`. */
function readTask (ctx: RouteContext): Reply {
  const task = taskView(ctx.state, must(ctx.state.tasks, ctx.params.id))
  if (ctx.query.get('resolve_uri') === 'false') return json(200, task)
  return json(200, { ...task, data: resolveStorageUris(Number(task.id), task.data ?? {}) })
}

function uploadedFile (ctx: RouteContext): Reply {
  must(ctx.state.projects, ctx.params.project_id)
  const upload = UPLOADS[ctx.pathname.slice(ctx.pathname.lastIndexOf('/') + 1)]
  if (upload === undefined) throw new HttpFailure(404, NOT_FOUND)
  return { status: 200, headers: { 'content-type': upload.type }, payload: upload.body }
}

function route (path: string, methods: Record<string, Handler>, isPublic = false): Route {
  // Parameters are ids, but for a file name ({file}), which is one segment of any characters.
  const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{file\}/g, '(?<file>[^/]+)')
    .replace(/\{(\w+)\}/g, '(?<$1>[0-9]+)')
  return { path, pattern: new RegExp(`^${source}$`), isPublic, methods }
}

const PREDICTION_CRUD = crud((s) => s.predictions)

const ROUTES: Route[] = [
  route('/health/', { GET: () => json(200, { status: 'UP' }) }, true),
  route('/api/version/', { GET: (ctx) => json(200, buildVersion(ctx.state)) }, true),
  route('/user/login/', { GET: (ctx) => formPage(ctx, '/user/login/'), POST: (ctx) => signIn(ctx, false) }, true),
  route('/user/signup/', { GET: (ctx) => formPage(ctx, '/user/signup/'), POST: (ctx) => signIn(ctx, true) }, true),
  route('/api/projects/', {
    GET: listProjects,
    POST: (ctx) => json(201, projectView(ctx.state, addProject(ctx.state, dataObject(ctx), caller(ctx).id)))
  }),
  route('/api/projects/{id}/', crud((s) => s.projects, projectView, removeProject)),
  route('/api/projects/{id}/next/', { GET: nextTask }),
  route('/api/projects/{id}/export', { GET: exportProject }),
  route('/api/projects/{id}/import', { POST: importProject }),
  route('/api/tasks/', { GET: listTasks, POST: createTask }),
  route('/api/tasks/{id}/', { ...crud((s) => s.tasks, taskView, removeTask), GET: readTask }),
  route('/api/tasks/{id}/annotations/', {
    GET: (ctx) => json(200, ctx.state.annotations.where((a) => a.task === must(ctx.state.tasks, ctx.params.id).id)),
    POST: (ctx) => json(201, addAnnotation(ctx.state, must(ctx.state.tasks, ctx.params.id), dataObject(ctx),
      caller(ctx).id))
  }),
  route('/api/annotations/{id}/', crud((s) => s.annotations)),
  route('/api/predictions/', { GET: listPredictions, POST: createPrediction }),
  route('/api/predictions/{id}/', { ...PREDICTION_CRUD, PUT: PREDICTION_CRUD.PATCH }),
  route('/api/tasks/{id}/drafts', {
    GET: (ctx) => json(200, ctx.state.drafts.where((d) =>
      d.task === must(ctx.state.tasks, ctx.params.id).id && d.user === caller(ctx).id)),
    POST: (ctx) => json(201, addDraft(ctx.state, must(ctx.state.tasks, ctx.params.id), dataObject(ctx),
      caller(ctx).id))
  }),
  route('/api/drafts/{id}/', crud((s) => s.drafts)),
  route('/api/dm/views/{id}/', crud((s) => s.views)),
  route('/api/comments/{id}/', crud((s) => s.comments)),
  route('/api/annotation-reviews/{id}/', crud((s) => s.reviews)),
  route('/api/ml/{id}', crud((s) => s.mlBackends)),
  route('/api/current-user/whoami', { GET: (ctx) => json(200, buildUser(ctx.state, caller(ctx), true)) }),
  route('/api/users/', { GET: (ctx) => json(200, ctx.state.users.map((u) => buildUser(ctx.state, u))) }),
  route('/data/upload/{project_id}/{file}', { GET: uploadedFile }),
  route('/api/users/{id}/', {
    GET: (ctx) => {
      const user = ctx.state.users.find((u) => u.id === ctx.params.id)
      if (user === undefined) throw new HttpFailure(404, NOT_FOUND)
      return json(200, buildUser(ctx.state, user))
    }
  })
]

/** The route paths and methods the stand-in answers, in Label Studio's spelling. */
export function standInRoutes (): Array<{ path: string, methods: string[] }> {
  return ROUTES.map((r) => ({ path: r.path, methods: Object.keys(r.methods) }))
}

function findRoute (pathname: string): { route: Route, params: Record<string, number> } | null {
  // Label Studio re-dispatches a slash-less path that matches nothing to path + "/".
  for (const candidate of pathname.endsWith('/') ? [pathname] : [pathname, `${pathname}/`]) {
    for (const r of ROUTES) {
      const match = r.pattern.exec(candidate)
      if (match !== null) {
        const params = Object.fromEntries(Object.entries(match.groups ?? {}).map(([k, v]) => [k, Number(v)]))
        return { route: r, params }
      }
    }
  }
  return null
}

function decodePath (path: string): string {
  try {
    return decodeURIComponent(path)
  } catch {
    return path
  }
}

function dispatch (state: StandInState, record: RecordedRequest, auth: Auth): Reply {
  const queryAt = record.url.indexOf('?')
  const rawPath = queryAt === -1 ? record.url : record.url.slice(0, queryAt)
  const found = findRoute(decodePath(rawPath))
  if (found === null) return json(404, NOT_FOUND)
  const denied = found.route.isPublic ? null : authFailure(auth)
  if (denied !== null) return denied
  const allowed = [...Object.keys(found.route.methods), 'HEAD', 'OPTIONS'].join(', ')
  const options = { renders: [JSON_TYPE], parses: [JSON_TYPE, FORM_TYPE] }
  if (record.method === 'OPTIONS') return json(200, options, { allow: allowed })
  const handler = found.route.methods[record.method === 'HEAD' ? 'GET' : record.method]
  if (handler === undefined) {
    return json(405, { detail: `Method "${record.method}" not allowed.` }, { allow: allowed })
  }
  const ctx: RouteContext = {
    state,
    user: 'user' in auth ? auth.user : null,
    params: found.params,
    query: new URLSearchParams(queryAt === -1 ? '' : record.url.slice(queryAt + 1)),
    origin: `http://${record.headers.host ?? '127.0.0.1'}`,
    headers: record.headers,
    pathname: rawPath,
    data: () => parseBody(record.headers, record.body)
  }
  try {
    return handler(ctx)
  } catch (error) {
    if (error instanceof HttpFailure) return json(error.status, error.body)
    throw error
  }
}

function send (res: ServerResponse, reply: Reply): void {
  if (res.destroyed || res.headersSent) return
  res.writeHead(reply.status, { ...reply.headers, 'content-length': String(Buffer.byteLength(reply.payload)) })
  res.end(reply.payload)
}

interface ServerContext {
  state: StandInState
  behaviour: StandInBehaviour
  requests: RecordedRequest[]
  closing: AbortSignal
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function handle (server: ServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const auth = authenticate(req.headers, server.state)
  const record: RecordedRequest = {
    method: req.method ?? '',
    url: req.url ?? '',
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body: Buffer.alloc(0),
    user: 'user' in auth ? auth.user : null
  }
  server.requests.push(record)
  record.body = await readBody(req)
  const { delayMs } = server.behaviour
  if (delayMs > 0) await sleep(delayMs, undefined, { signal: server.closing })
  if (server.behaviour.reset) {
    req.socket.resetAndDestroy()
    return
  }
  const { failStatus } = server.behaviour
  const reply = failStatus === null ? dispatch(server.state, record, auth) : detail(failStatus)
  reply.headers = { ...labelStudioHeaders(req.headers), ...reply.headers, ...server.behaviour.headers }
  send(res, reply)
}

function closeServer (server: Server, sockets: Set<Socket>, closing: AbortController): Promise<void> {
  closing.abort()
  const closed = new Promise<void>((resolve, reject) => server.close((error) => error ? reject(error) : resolve()))
  for (const socket of sockets) socket.destroy()
  return closed
}

export async function startLabelStudioStandIn (options: StandInOptions = {}): Promise<StandIn> {
  const state = createStandInState(options.users ?? DEFAULT_STANDIN_USERS, options.dataDir)
  const behaviour: StandInBehaviour = { delayMs: 0, reset: false, failStatus: null, headers: {}, ...options.behaviour }
  const closing = new AbortController()
  const context: ServerContext = { state, behaviour, requests: [], closing: closing.signal }
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    handle(context, req, res).catch(() => {
      if (res.headersSent || closing.signal.aborted) res.destroy()
      else send(res, json(500, { detail: 'The Label Studio stand-in failed to answer' }))
    })
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('Label Studio stand-in: no TCP address')
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    accessToken: (userId, seconds) => state.browser.accessToken(userId, seconds),
    state,
    requests: context.requests,
    behaviour,
    clear: () => { context.requests.length = 0 },
    close: () => closeServer(server, sockets, closing)
  }
}
