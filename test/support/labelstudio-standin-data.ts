// Test scaffolding: the data behind the Label Studio stand-in (labelstudio-standin.ts). Payload shapes
// come from the shared Label Studio reference data (Fern examples and real exports); the few values
// curated here are kept small. Each stand-in instance gets its own in-memory copy.

import { BrowserSessions } from './labelstudio-standin-browser.js'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject
export interface JsonObject { [key: string]: JsonValue }

export interface StandInUser {
  id: number
  email: string
  username?: string
  token: string
  /** Defaults to the part of the e-mail before @, then "-password" (see passwordOf). */
  password?: string
}

export const DEFAULT_STANDIN_USERS: readonly StandInUser[] = Object.freeze([
  Object.freeze({
    id: 1,
    email: 'admin@example.com',
    username: 'admin',
    token: '59018975800f8d399097462541714e396ef11367'
  }),
  Object.freeze({
    id: 2,
    email: 'annotator@example.com',
    username: 'annotator',
    token: '6048ed46cb772160d14a967077970afcb70c3520'
  })
])

// The repository root is two directories above test/support; the shared data sits beside the checkout.
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const DEFAULT_REFERENCE_DIR = resolve(REPO_ROOT, '..', 'shared', 'labelstudio')

// Label Studio Community registers these permissions for every member (core/permissions.py).
const COMMUNITY_PERMISSIONS = ['organizations.view', 'organizations.change', 'projects.view', 'projects.create',
  'projects.change', 'projects.delete', 'tasks.view', 'tasks.change', 'tasks.delete', 'annotations.view',
  'annotations.create', 'annotations.change', 'annotations.delete', 'actions.perform', 'predictions.any',
  'avatar.any', 'labels.view', 'labels.create', 'labels.change', 'labels.delete']

const LABEL_CONFIGS: Record<number, string> = {
  1: '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">' +
    '<Label value="parasites"/><Label value="white"/></RectangleLabels></View>',
  2: '<View><Image name="image" value="$image"/><PolygonLabels name="label" toName="image">' +
    '<Label value="Airplane"/></PolygonLabels></View>'
}

// Seed projects (project 1 carries task-media credentials, which Label Studio returns in plain text) and
// the unlabelled tasks added beside the exported ones, so the label stream has work.
const SEED_PROJECTS: JsonObject[] = [
  {
    id: 1,
    title: 'Blood cell detection',
    description: 'Bounding boxes on microscope slides',
    task_data_login: 'media-reader',
    task_data_password: 'media-password-1'
  },
  {
    id: 2,
    title: 'Airplane outlines',
    description: 'Polygons around airplanes',
    task_data_login: null,
    task_data_password: null
  }
]
const SEED_UNLABELLED: JsonObject[] = [
  { id: 3, project: 1, data: { image: '/image3' }, inner_id: 3 },
  { id: 88, project: 2, data: { image: '/data/upload/29/example-2.png' }, inner_id: 2 }
]
const TASK_FIELDS = ['id', 'data', 'meta', 'project', 'inner_id', 'file_upload', 'created_at', 'updated_at',
  'updated_by', 'comment_count', 'unresolved_comment_count', 'last_comment_updated_at', 'comment_authors']

export const LOGIN_PAGE = '<!DOCTYPE html>\n<html><head><title>Label Studio</title></head><body>\n' +
  '<form method="post" action="/user/login/"><input type="hidden" name="csrfmiddlewaretoken" value="standin">\n' +
  '<input name="email" type="email"><input name="password" type="password"><button>Log in</button></form>\n' +
  '</body></html>\n'

export interface Templates {
  project: JsonObject
  annotation: JsonObject
  prediction: JsonObject
  user: JsonObject
  version: JsonObject
  importResult: JsonObject
}

interface ReferenceData {
  templates: Templates
  exports: { yolo: JsonObject[], polygons: JsonObject[] }
}

export function isJsonObject (value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function now (): string {
  return new Date().toISOString()
}

function readReference (dir: string, file: string): string {
  const path = join(dir, file)
  if (!existsSync(path)) {
    throw new Error(`Label Studio stand-in: the reference file ${path} is missing. The stand-in reads the ` +
      'shared Label Studio reference data beside the checkout, at <checkout>/../shared/labelstudio/.')
  }
  return readFileSync(path, 'utf8')
}

function dig (value: unknown, keys: ReadonlyArray<string | number>): unknown {
  let current = value
  for (const key of keys) {
    if (typeof current !== 'object' || current === null) return undefined
    current = (current as Record<string | number, unknown>)[key]
  }
  return current
}

function fernBody (dir: string, file: string, endpoint: string): JsonObject {
  const doc: unknown = parse(readReference(dir, join('sdk-fern-definition', 'definition', file)))
  const body = dig(doc, ['service', 'endpoints', endpoint, 'examples', 0, 'response', 'body'])
  const first = Array.isArray(body) ? body[0] : body
  if (!isJsonObject(first)) throw new Error(`Label Studio stand-in: ${file} has no example response for ${endpoint}`)
  return first
}

function exportTasks (dir: string, file: string): JsonObject[] {
  const tasks: unknown = JSON.parse(readReference(dir, join('examples', file)))
  if (!Array.isArray(tasks) || !tasks.every(isJsonObject)) {
    throw new Error(`Label Studio stand-in: examples/${file} is not a list of tasks`)
  }
  return tasks
}

const referenceCache = new Map<string, ReferenceData>()

function loadReferenceData (dir: string): ReferenceData {
  const cached = referenceCache.get(dir)
  if (cached !== undefined) return cached
  const data: ReferenceData = {
    templates: {
      project: fernBody(dir, 'projects.yml', 'get'),
      annotation: fernBody(dir, 'annotations.yml', 'get'),
      prediction: fernBody(dir, 'predictions.yml', 'get'),
      user: fernBody(dir, 'users.yml', 'get'),
      version: fernBody(dir, 'versions.yml', 'get'),
      importResult: fernBody(dir, 'projects.yml', 'import_tasks')
    },
    exports: {
      yolo: exportTasks(dir, 'export_json_yolo_tasks.json'),
      polygons: exportTasks(dir, 'export_json_tasks_with_annotations.json')
    }
  }
  referenceCache.set(dir, data)
  return data
}

/** Rows of one resource, keyed by id; ids given on insert are kept, others are allocated. */
export class Table {
  readonly rows = new Map<number, JsonObject>()
  #nextId = 1

  insert (row: JsonObject): JsonObject {
    const id = typeof row.id === 'number' ? row.id : this.#nextId
    const stored = { ...row, id }
    this.rows.set(id, stored)
    this.#nextId = Math.max(this.#nextId, id + 1)
    return stored
  }

  find (id: number | undefined): JsonObject | undefined {
    return id === undefined ? undefined : this.rows.get(id)
  }

  where (test: (row: JsonObject) => boolean = () => true): JsonObject[] {
    return [...this.rows.values()].filter(test).sort((a, b) => Number(a.id) - Number(b.id))
  }

  removeWhere (test: (row: JsonObject) => boolean): void {
    for (const row of this.where(test)) this.rows.delete(Number(row.id))
  }
}

export interface StandInState {
  /** Signup adds to it. */
  users: StandInUser[]
  /** Browser sessions and JWT access tokens. */
  browser: BrowserSessions
  templates: Templates
  projects: Table
  tasks: Table
  annotations: Table
  predictions: Table
  drafts: Table
  /** Data Manager tabs, comments, annotation reviews (Enterprise) and ML backends, one or two per project. */
  views: Table
  comments: Table
  reviews: Table
  mlBackends: Table
}

export function userSummary (state: StandInState, id: number): JsonObject {
  const user = state.users.find((u) => u.id === id)
  return { id, email: user?.email ?? '', first_name: '', last_name: '', avatar: null }
}

export function buildUser (state: StandInState, user: StandInUser, withPermissions = false): JsonObject {
  const owner = state.users[0]
  const view: JsonObject = {
    ...structuredClone(state.templates.user),
    id: user.id,
    email: user.email,
    username: user.username ?? user.email.split('@')[0] ?? user.email,
    first_name: '',
    last_name: '',
    phone: '',
    avatar: null,
    initials: user.email.slice(0, 2),
    custom_hotkeys: {},
    active_organization: 1,
    active_organization_meta: { title: 'Label Studio', email: owner?.email ?? '' },
    org_membership: [{ active: true, organization_id: 1, role: user.id === owner?.id ? 'OW' : 'AN' }]
  }
  return withPermissions ? { ...view, permissions: [...COMMUNITY_PERMISSIONS] } : view
}

export function buildProject (state: StandInState, fields: JsonObject): JsonObject {
  const stamp = now()
  return {
    ...structuredClone(state.templates.project),
    created_at: stamp,
    pinned_at: null,
    color: '#FFFFFF',
    label_config: '<View></View>',
    expert_instruction: '',
    is_draft: false,
    is_published: false,
    organization: 1,
    workspace: null,
    ...fields
  }
}

export function buildTask (fields: JsonObject): JsonObject {
  const stamp = now()
  return {
    data: {},
    meta: {},
    created_at: stamp,
    updated_at: stamp,
    is_labeled: false,
    overlap: 1,
    inner_id: 1,
    file_upload: null,
    updated_by: null,
    comment_count: 0,
    unresolved_comment_count: 0,
    last_comment_updated_at: null,
    comment_authors: [],
    ...fields
  }
}

export function buildAnnotation (state: StandInState, fields: JsonObject): JsonObject {
  const stamp = now()
  return {
    ...structuredClone(state.templates.annotation),
    result: [],
    was_cancelled: false,
    ground_truth: false,
    created_at: stamp,
    updated_at: stamp,
    draft_created_at: null,
    lead_time: null,
    import_id: null,
    last_action: null,
    parent_prediction: null,
    parent_annotation: null,
    last_created_by: null,
    bulk_created: false,
    state: 'CREATED',
    created_ago: '0 minutes',
    created_username: createdUsername(state, fields.completed_by),
    ...fields
  }
}

function createdUsername (state: StandInState, id: JsonValue | undefined): string {
  const user = state.users.find((u) => u.id === id)
  return user === undefined ? '' : `${user.email}, ${user.id}`
}

export function buildPrediction (state: StandInState, fields: JsonObject): JsonObject {
  const stamp = now()
  return {
    ...structuredClone(state.templates.prediction),
    created_at: stamp,
    updated_at: stamp,
    created_ago: '0 minutes',
    model: null,
    model_run: null,
    cluster: null,
    neighbors: null,
    mislabeling: 0,
    score: null,
    model_version: '',
    ...fields
  }
}

export function buildDraft (fields: JsonObject): JsonObject {
  const stamp = now()
  return {
    result: [],
    lead_time: null,
    was_postponed: false,
    import_id: null,
    annotation: null,
    created_at: stamp,
    updated_at: stamp,
    ...fields
  }
}

export function buildVersion (state: StandInState): JsonObject {
  return { ...structuredClone(state.templates.version), release: '1.20.0', edition: 'Community' }
}

function pick (source: JsonObject, keys: readonly string[]): JsonObject {
  return Object.fromEntries(keys.filter((k) => k in source).map((k) => [k, structuredClone(source[k] ?? null)]))
}

function seedExport (state: StandInState, tasks: readonly JsonObject[], project: number): void {
  for (const task of tasks) {
    const row = state.tasks.insert(buildTask({ ...pick(task, TASK_FIELDS), project }))
    const annotations = Array.isArray(task.annotations) ? task.annotations.filter(isJsonObject) : []
    for (const annotation of annotations) {
      const fields = { ...structuredClone(annotation), task: row.id ?? null, project }
      state.annotations.insert(buildAnnotation(state, fields))
    }
  }
}

function seedPrediction (state: StandInState): void {
  const source = state.annotations.where((a) => a.project === 1).at(-1)
  state.predictions.insert(buildPrediction(state, {
    id: 1,
    task: 3,
    project: 1,
    model_version: 'yolo-v8',
    score: 0.95,
    result: structuredClone(source?.result ?? [])
  }))
}

export function createStandInState (users: readonly StandInUser[], dir = DEFAULT_REFERENCE_DIR): StandInState {
  const reference = loadReferenceData(dir)
  const state: StandInState = {
    users: [...users],
    browser: new BrowserSessions(),
    templates: reference.templates,
    projects: new Table(),
    tasks: new Table(),
    annotations: new Table(),
    predictions: new Table(),
    drafts: new Table(),
    views: new Table(),
    comments: new Table(),
    reviews: new Table(),
    mlBackends: new Table()
  }
  for (const project of SEED_PROJECTS) {
    const id = Number(project.id)
    state.projects.insert(buildProject(state, {
      ...project,
      label_config: LABEL_CONFIGS[id] ?? '<View></View>',
      created_by: userSummary(state, users[0]?.id ?? 1),
      created_at: '2024-01-30T02:40:00.000000Z'
    }))
  }
  seedExport(state, reference.exports.yolo, 1)
  seedExport(state, reference.exports.polygons, 2)
  for (const task of SEED_UNLABELLED) state.tasks.insert(buildTask(task))
  seedPrediction(state)
  for (const project of [1, 2]) seedProjectObjects(state, project, users[1]?.id ?? 2)
  return state
}

/**
 * A draft, a Data Manager tab, a comment, a review and an ML backend in a project, in the shapes
 * Label Studio answers: drafts and reviews name no project, only their task or annotation.
 */
function seedProjectObjects (state: StandInState, project: number, userId: number): void {
  const task = tasksOf(state, project)[0]
  const annotation = state.annotations.where((a) => a.project === project)[0]
  if (task === undefined || annotation === undefined) return
  const stamp = '2024-02-01T10:00:00.000000Z'
  state.drafts.insert(buildDraft({ task: task.id ?? null, user: userId, created_at: stamp, updated_at: stamp }))
  if (state.predictions.where((p) => p.project === project).length === 0) {
    state.predictions.insert(buildPrediction(state, { id: null, task: task.id ?? null, project, result: [], model_version: 'v1' }))
  }
  state.views.insert({ project, order: 0, user: userId, data: { title: 'Default', type: 'list', target: 'tasks' } })
  state.comments.insert({
    project,
    task: task.id ?? null,
    annotation: annotation.id ?? null,
    draft: null,
    text: 'Check the left box',
    is_resolved: false,
    created_by: userId,
    created_at: stamp,
    updated_at: stamp
  })
  state.reviews.insert({ annotation: annotation.id ?? null, accepted: true, result: null, created_by: userId })
  state.mlBackends.insert({
    project,
    title: `Model of project ${project}`,
    url: `http://ml-${project}.internal:9090`,
    is_interactive: true,
    state: 'CO',
    model_version: 'v1'
  })
}

export function taskView (state: StandInState, task: JsonObject): JsonObject {
  const annotations = state.annotations.where((a) => a.task === task.id)
  const predictions = state.predictions.where((p) => p.task === task.id)
  const done = annotations.filter((a) => a.was_cancelled !== true)
  return {
    ...task,
    annotations,
    predictions,
    drafts: state.drafts.where((d) => d.task === task.id),
    is_labeled: done.length > 0,
    total_annotations: done.length,
    cancelled_annotations: annotations.length - done.length,
    total_predictions: predictions.length
  }
}

export function projectView (state: StandInState, project: JsonObject): JsonObject {
  const tasks = state.tasks.where((t) => t.project === project.id).map((t) => taskView(state, t))
  const labelled = tasks.filter((t) => t.is_labeled === true).length
  const sum = (key: string): number => tasks.reduce((n, t) => n + Number(t[key] ?? 0), 0)
  return {
    ...project,
    task_number: tasks.length,
    finished_task_number: labelled,
    num_tasks_with_annotations: labelled,
    total_annotations_number: sum('total_annotations'),
    skipped_annotations_number: sum('cancelled_annotations'),
    total_predictions_number: sum('total_predictions'),
    queue_total: tasks.length,
    queue_done: labelled,
    queue_left: tasks.length - labelled
  }
}

export function tasksOf (state: StandInState, project: number | undefined): JsonObject[] {
  return state.tasks.where((t) => project === undefined || t.project === project).map((t) => taskView(state, t))
}

export function taskTotals (tasks: readonly JsonObject[]): JsonObject {
  const sum = (key: string): number => tasks.reduce((n, t) => n + Number(t[key] ?? 0), 0)
  return {
    total: tasks.length,
    total_annotations: sum('total_annotations'),
    total_predictions: sum('total_predictions')
  }
}

export function removeTask (state: StandInState, id: number): void {
  for (const table of [state.annotations, state.predictions, state.drafts]) {
    table.removeWhere((row) => row.task === id)
  }
  state.tasks.rows.delete(id)
}

export function removeProject (state: StandInState, id: number): void {
  for (const task of state.tasks.where((t) => t.project === id)) removeTask(state, Number(task.id))
  state.projects.rows.delete(id)
}

interface ImportCounts { task_count: number, annotation_count: number, predictions_count: number }

function importOne (state: StandInState, project: number, item: JsonObject, userId: number,
  counts: ImportCounts): void {
  const data = isJsonObject(item.data) ? item.data : item
  const task = state.tasks.insert(buildTask({ data, project }))
  const nested = (key: string): JsonObject[] => Array.isArray(item[key]) ? item[key].filter(isJsonObject) : []
  for (const annotation of nested('annotations')) {
    state.annotations.insert(buildAnnotation(state, {
      completed_by: userId,
      ...annotation,
      id: null,
      task: task.id ?? null,
      project
    }))
    counts.annotation_count += 1
  }
  for (const prediction of nested('predictions')) {
    state.predictions.insert(buildPrediction(state, { ...prediction, id: null, task: task.id ?? null, project }))
    counts.predictions_count += 1
  }
  counts.task_count += 1
}

/** Imports tasks given as `[{data, annotations?, predictions?}]` or bare data objects, like Label Studio. */
export function importTasks (state: StandInState, project: number, items: JsonObject[], userId: number): JsonObject {
  const counts: ImportCounts = { task_count: 0, annotation_count: 0, predictions_count: 0 }
  for (const item of items) importOne(state, project, item, userId, counts)
  const columns = new Set(items.flatMap((item) => Object.keys(isJsonObject(item.data) ? item.data : item)))
  return {
    ...structuredClone(state.templates.importResult),
    ...counts,
    duration: 0.01,
    file_upload_ids: [],
    could_be_tasks_list: false,
    found_formats: [],
    data_columns: [...columns]
  }
}

export function addProject (state: StandInState, data: JsonObject, userId: number): JsonObject {
  return state.projects.insert(buildProject(state, {
    title: '',
    description: '',
    ...data,
    id: null,
    created_by: userSummary(state, userId)
  }))
}

export function addAnnotation (state: StandInState, task: JsonObject, data: JsonObject, userId: number): JsonObject {
  return state.annotations.insert(buildAnnotation(state, {
    ...data,
    id: null,
    task: task.id ?? null,
    project: task.project ?? null,
    completed_by: userId,
    updated_by: userId
  }))
}

export function addPrediction (state: StandInState, task: JsonObject, data: JsonObject): JsonObject {
  return state.predictions.insert(buildPrediction(state, {
    ...data,
    id: null,
    task: task.id ?? null,
    project: task.project ?? null
  }))
}

export function addDraft (state: StandInState, task: JsonObject, data: JsonObject, userId: number): JsonObject {
  return state.drafts.insert(buildDraft({ ...data, id: null, task: task.id ?? null, user: userId }))
}

export function intParam (query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name)
  return value !== null && /^[0-9]+$/.test(value) ? Number(value) : undefined
}

function pageLink (base: string, query: URLSearchParams, page: number): string {
  const params = new URLSearchParams(query)
  if (page === 1) params.delete('page')
  else params.set('page', String(page))
  params.sort()
  const search = params.toString()
  return search === '' ? base : `${base}?${search}`
}

/**
 * Django REST framework's PageNumberPagination: `page` (a number or "last") and `page_size`, with absolute
 * next/previous links whose query keys are sorted. Returns null for a page that does not exist.
 */
export function paginate (rows: JsonValue[], query: URLSearchParams, base: string): JsonObject | null {
  const pageSize = intParam(query, 'page_size') || 100
  const pages = Math.max(1, Math.ceil(rows.length / pageSize))
  const raw = query.get('page') ?? '1'
  const page = raw === 'last' ? pages : /^[0-9]+$/.test(raw) ? Number(raw) : NaN
  if (!(page >= 1 && page <= pages)) return null
  return {
    count: rows.length,
    next: page < pages ? pageLink(base, query, page + 1) : null,
    previous: page > 1 ? pageLink(base, query, page - 1) : null,
    results: rows.slice((page - 1) * pageSize, page * pageSize)
  }
}
