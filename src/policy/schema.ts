import { Type, type Static } from '@sinclair/typebox'
import { PROJECT_KINDS } from './scope.js'

// The schema of one file in policies/. A role allows nothing except what its rules allow.

const strict = { additionalProperties: false } as const

export const POLICY_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
export type PolicyMethod = typeof POLICY_METHODS[number]

/** A query parameter's allowed values: int, bool, any, dm-filters, a list of literals, or a pattern. */
export const QuerySpecSchema = Type.Union([
  Type.String(),
  Type.Array(Type.String(), { minItems: 1 }),
  Type.Object({ pattern: Type.String({ minLength: 1 }) }, strict)
], { description: 'int, bool, any, dm-filters, a list of values, or {pattern: ...}' })

/** The body a rule accepts: JSON of this top-level shape, holding only these fields. */
export const RequestSpecSchema = Type.Object({
  body: Type.Union([Type.Literal('object'), Type.Literal('array'), Type.Literal('any')], { default: 'object' }),
  fields: Type.Array(Type.String(), { uniqueItems: true }),
  content_types: Type.Array(Type.Union([Type.Literal('json'), Type.Literal('form'), Type.Literal('multipart')]), {
    minItems: 1, uniqueItems: true, default: ['json']
  }),
  max_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
  values: Type.Optional(Type.Record(Type.String(), QuerySpecSchema, {
    description: 'field path -> allowed values, as for query parameters (dm-filters checks filter JSON)'
  }))
}, strict)

/** The fields of one item of the response that reach the client. */
export const ResponseSpecSchema = Type.Object({
  fields: Type.Array(Type.String(), { uniqueItems: true })
}, strict)

const PROJECT_KIND = Type.Union(PROJECT_KINDS.map((k) => Type.Literal(k)))

/** Where a rule's project comes from, beyond path parameters named after a kind (`{task:int}`). */
export const ProjectSpecSchema = Type.Union([
  Type.Literal('none', { description: 'the rule reaches no project\'s data' }),
  Type.Literal('path', { description: 'path parameters named after a kind ({project:int}, {task:int}) say it all' }),
  Type.Object({
    query: Type.Optional(Type.Record(Type.String(), PROJECT_KIND, { description: 'query parameter -> kind' })),
    body: Type.Optional(Type.Record(Type.String(), PROJECT_KIND, { description: 'body field path -> kind' })),
    lists: Type.Optional(Type.Record(Type.String(), Type.Object({
      items: Type.Optional(Type.String({ minLength: 1, description: 'key of the item array; omitted: the body' })),
      field: Type.String({ minLength: 1, description: 'where an item keeps its project id' }),
      narrow: Type.Optional(Type.String({ minLength: 1, description: 'query parameter taking project ids' }))
    }, strict), { description: 'list templates that need no project: their items are filtered' })),
    not_ids: Type.Optional(Type.Array(Type.String(), { uniqueItems: true })),
    none: Type.Optional(Type.Literal(true, { description: 'the rule reaches no project (with not_ids)' }))
  }, strict)
])

/** One grant: these methods on these path templates, with optional query, body and response lists. */
export const RuleSchema = Type.Object({
  id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$', description: 'unique within the role, kebab-case' }),
  description: Type.Optional(Type.String()),
  methods: Type.Array(Type.Union(POLICY_METHODS.map((m) => Type.Literal(m))), { minItems: 1, uniqueItems: true }),
  paths: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true }),
  query: Type.Optional(Type.Record(Type.String(), QuerySpecSchema)),
  request: Type.Optional(RequestSpecSchema),
  response: Type.Optional(ResponseSpecSchema),
  project: Type.Optional(ProjectSpecSchema),
  other_projects: Type.Optional(Type.Union([Type.Literal('forbidden'), Type.Literal('not-found')], {
    description: 'this rule\'s answer to an id outside the binding, instead of the role\'s'
  }))
}, strict)

export const PolicyFileSchema = Type.Object({
  role: Type.String({ pattern: '^[a-z][a-z0-9_-]*$', description: 'the role name; the file is named <role>.yaml' }),
  description: Type.String({ minLength: 1 }),
  projects: Type.Union([Type.Literal('bound'), Type.Literal('all')], {
    default: 'all', description: 'bound: each user reaches only the projects of their binding'
  }),
  other_projects: Type.Union([Type.Literal('forbidden'), Type.Literal('not-found')], {
    default: 'forbidden', description: 'the answer to an id of a project outside the binding: 403 or 404'
  }),
  rules: Type.Array(RuleSchema, { default: [] })
}, strict)

export type RawPolicyFile = Static<typeof PolicyFileSchema>
export type RawRule = Static<typeof RuleSchema>
export type RawProjectSpec = Exclude<Static<typeof ProjectSpecSchema>, string>
