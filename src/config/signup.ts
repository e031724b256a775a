import { Type } from '@sinclair/typebox'
import type { ConfigProblems } from './load.js'
import type { GatewayConfig } from './types.js'

// Who may create an account through Label Studio's signup form, and how long passwords must be.

export const SignupSchema = Type.Object({
  mode: Type.Union([Type.Literal('closed'), Type.Literal('invite'), Type.Literal('open')], {
    default: 'invite',
    description: 'closed: no signup; invite: /user/signup/ needs an invite token; open: anyone'
  }),
  password_min_length: Type.Integer({ minimum: 1, maximum: 1024, default: 8 }),
  password_max_length: Type.Integer({ minimum: 1, maximum: 4096, default: 128 })
}, { additionalProperties: false })

export function resolveSignup (
  raw: { signup: typeof SignupSchema.static }, c: ConfigProblems
): GatewayConfig['signup'] {
  const s = raw.signup
  if (s.password_max_length < s.password_min_length) {
    c.add(['signup', 'password_max_length'], 'must not be below password_min_length')
  }
  return { mode: s.mode, passwordMinLength: s.password_min_length, passwordMaxLength: s.password_max_length }
}
