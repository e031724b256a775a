import { parseDuration } from '../config/units.js'
import type { GatewayConfig } from '../config/types.js'
import type { IdentityStore } from '../identity/store.js'
import { createToken, createTokenId, digestToken, GATEWAY_TOKEN_PREFIX, type TokenRecord } from '../identity/records.js'
import { seal } from '../identity/seal.js'
import { CliError, formatTime, loadPoliciesOrFail, parseProjectList, readStdin, table } from './shared.js'

export interface CommandContext {
  config: GatewayConfig
  store: IdentityStore
  out: (text: string) => void
  err: (text: string) => void
}

type Flags = Record<string, string | boolean | string[] | undefined>

/** Printable ASCII without spaces, as every Label Studio token (legacy key or JWT) is. */
const LABEL_STUDIO_TOKEN = /^[\x21-\x7e]{8,1024}$/

function requireString (flags: Flags, name: string): string {
  const value = flags[name]
  if (typeof value !== 'string' || value === '') throw new CliError(`--${name} is required`, 2)
  return value
}

function expiry (ctx: CommandContext, flags: Flags, now: number): number | null {
  const text = flags.expires
  const lifetime = ctx.config.identity.tokenLifetimeMs
  if (text === undefined) return lifetime === null ? null : now + lifetime
  if (text === 'never') return null
  const ms = typeof text === 'string' ? parseDuration(text) : null
  if (ms === null || ms === 0) throw new CliError('--expires must be a duration such as 90d or 12h, or never', 2)
  return now + ms
}

async function newRecord (
  ctx: CommandContext, flags: Flags, kind: TokenRecord['kind'], token: string
): Promise<TokenRecord> {
  const user = requireString(flags, 'user')
  const now = Date.now()
  const record: TokenRecord = {
    id: createTokenId(),
    digest: digestToken(token),
    user,
    kind,
    createdAt: now,
    expiresAt: expiry(ctx, flags, now),
    revokedAt: null,
    last4: token.slice(-4),
    upstream: null
  }
  if (!(await ctx.store.getUser(user))) {
    ctx.err(`note: ${user} has no role binding yet; requests with this token are refused until ` +
      `'labelgate user set ${user} --role R'`)
  }
  return record
}

async function store (ctx: CommandContext, record: TokenRecord): Promise<void> {
  if (await ctx.store.createToken(record)) return
  const existing = (await ctx.store.lookup(record.digest))?.token
  const which = existing ? ` as ${existing.id} for ${existing.user}` : ''
  throw new CliError(`this token is already registered${which}; a token belongs to one record only`, 1)
}

export async function tokenCreate (ctx: CommandContext, flags: Flags): Promise<void> {
  const token = createToken()
  const record = await newRecord(ctx, flags, 'issued', token)
  if (flags['upstream-token-stdin'] === true) {
    const key = ctx.config.identity.encryptionKey
    if (key === null) {
      throw new CliError('identity.encryption_key is not configured: it is needed to keep a Label Studio token', 1)
    }
    const upstream = await readStdin()
    if (!LABEL_STUDIO_TOKEN.test(upstream)) throw new CliError('standard input does not hold a Label Studio token', 1)
    record.upstream = seal(key, upstream, record.id)
  }
  await store(ctx, record)
  ctx.err(`created ${record.id} for ${record.user}, expires ${formatTime(record.expiresAt)}; the token is shown once:`)
  ctx.out(token)
}

export async function tokenRegister (ctx: CommandContext, flags: Flags): Promise<void> {
  const token = await readStdin()
  if (!LABEL_STUDIO_TOKEN.test(token)) throw new CliError('standard input does not hold a Label Studio token', 1)
  // A gateway token registered as a Label Studio token would be forwarded upstream in the clear.
  if (token.startsWith(GATEWAY_TOKEN_PREFIX)) throw new CliError('this is a gateway token, not a Label Studio token', 1)
  const record = await newRecord(ctx, flags, 'registered', token)
  await store(ctx, record)
  ctx.out(`registered ${record.id} for ${record.user} (…${record.last4}), expires ${formatTime(record.expiresAt)}`)
}

function tokenState (t: TokenRecord, now: number): string {
  if (t.revokedAt !== null) return 'revoked'
  if (t.expiresAt !== null && t.expiresAt <= now) return 'expired'
  return 'active'
}

export async function tokenList (ctx: CommandContext, flags: Flags): Promise<void> {
  const now = Date.now()
  const tokens = (await ctx.store.listTokens()).sort((a, b) => a.createdAt - b.createdAt)
  const rows = tokens.map((t) => ({
    id: t.id,
    user: t.user,
    kind: t.kind,
    created: formatTime(t.createdAt),
    expires: formatTime(t.expiresAt),
    state: tokenState(t, now),
    last4: t.last4,
    upstreamToken: t.upstream !== null
  }))
  if (flags.json === true) return ctx.out(JSON.stringify(rows, null, 2))
  ctx.out(table(['ID', 'USER', 'KIND', 'CREATED', 'EXPIRES', 'STATE', 'LAST4'],
    rows.map((r) => [r.id, r.user, r.kind, r.created, r.expires, r.state, `…${r.last4}`])))
}

export async function tokenRevoke (ctx: CommandContext, id: string | undefined): Promise<void> {
  if (!id) throw new CliError('usage: labelgate token revoke ID', 2)
  const record = await ctx.store.revokeToken(id, Date.now())
  if (!record) throw new CliError(`no token with id ${id}`, 1)
  ctx.out(`revoked ${record.id} (${record.user})`)
}

export async function userSet (ctx: CommandContext, user: string | undefined, flags: Flags): Promise<void> {
  if (!user) throw new CliError('usage: labelgate user set USER --role ROLE [--projects 1,2|all|none]', 2)
  const role = requireString(flags, 'role')
  const roles = loadPoliciesOrFail(ctx.config).roles
  if (!roles.has(role)) throw new CliError(`unknown role "${role}"; roles: ${[...roles.keys()].sort().join(', ')}`, 1)
  const existing = await ctx.store.getUser(user)
  const bound = roles.get(role)?.projects === 'bound'
  if (bound && flags.projects === undefined) {
    throw new CliError(`role ${role} is bound to projects: give --projects 1,2 (or --projects all)`, 2)
  }
  if (!bound && flags.projects !== undefined && flags.projects !== 'all' && flags.projects !== 'none') {
    throw new CliError(`role ${role} reaches every project (its policy has no "projects: bound"); ` +
      'a project list would not limit it', 2)
  }
  // A role that reaches every project still gets no project list by default: should its policy be
  // bound to projects later, its users reach none until they are given some.
  const projects = flags.projects === undefined ? [] : parseProjectList(flags.projects)
  await ctx.store.putUser({ user, role, projects, disabled: existing?.disabled ?? false, updatedAt: Date.now() })
  const listed = projects === 'all' ? 'all' : projects.join(',')
  const reach = bound ? listed : 'every project (the role is not bound to projects)'
  ctx.out(`${user}: role ${role}, projects ${reach}`)
}

export async function userSetDisabled (
  ctx: CommandContext, user: string | undefined, disabled: boolean
): Promise<void> {
  if (!user) throw new CliError(`usage: labelgate user ${disabled ? 'disable' : 'enable'} USER`, 2)
  const existing = await ctx.store.getUser(user)
  if (!existing) throw new CliError(`no binding for ${user}`, 1)
  await ctx.store.putUser({ ...existing, disabled, updatedAt: Date.now() })
  ctx.out(`${user}: ${disabled ? 'disabled' : 'enabled'}`)
}

export async function userList (ctx: CommandContext, flags: Flags): Promise<void> {
  const users = await ctx.store.listUsers()
  if (flags.json === true) return ctx.out(JSON.stringify(users, null, 2))
  ctx.out(table(['USER', 'ROLE', 'PROJECTS', 'STATE'], users.map((u) => [
    u.user, u.role, u.projects === 'all' ? 'all' : u.projects.join(',') || '-', u.disabled ? 'disabled' : 'active'
  ])))
}
