import { Type, type Static } from '@sinclair/typebox'

// The schema of one file in policies/. A role allows nothing except what its rules allow.

const strict = { additionalProperties: false } as const

export const POLICY_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
export type PolicyMethod = typeof POLICY_METHODS[number]

/** One grant: these methods on these path templates. */
export const RuleSchema = Type.Object({
  id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$', description: 'unique within the role, kebab-case' }),
  description: Type.Optional(Type.String()),
  methods: Type.Array(Type.Union(POLICY_METHODS.map((m) => Type.Literal(m))), { minItems: 1, uniqueItems: true }),
  paths: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true })
}, strict)

export const PolicyFileSchema = Type.Object({
  role: Type.String({ pattern: '^[a-z][a-z0-9_-]*$', description: 'the role name; the file is named <role>.yaml' }),
  description: Type.String({ minLength: 1 }),
  rules: Type.Array(RuleSchema, { default: [] })
}, strict)

export type RawPolicyFile = Static<typeof PolicyFileSchema>
export type RawRule = Static<typeof RuleSchema>
