import { parseArgs } from 'node:util'
import closeWithGrace from 'close-with-grace'
import { openIdentityStore } from '../identity/open-store.js'
import type { GatewayConfig } from '../config/types.js'
import { CHECK_HELP, MAIN_HELP, POLICY_HELP, SERVE_HELP, TOKEN_HELP, USER_HELP } from './usage.js'
import { CliError, configPath, loadConfigOrFail, loadPoliciesOrFail } from './shared.js'
import * as id from './identity-commands.js'
import * as policy from './policy-commands.js'

const print = (text: string): void => { process.stdout.write(text + '\n') }

const OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  user: { type: 'string' },
  expires: { type: 'string' },
  'upstream-token-stdin': { type: 'boolean' },
  role: { type: 'string' },
  projects: { type: 'string' },
  json: { type: 'boolean' },
  body: { type: 'string' },
  object: { type: 'string', multiple: true }
} as const

const HELP: Record<string, string> = {
  serve: SERVE_HELP, check: CHECK_HELP, token: TOKEN_HELP, user: USER_HELP, policy: POLICY_HELP
}

async function serve (flags: { config?: string | undefined }): Promise<void> {
  const config = loadConfigOrFail(flags.config)
  const policies = loadPoliciesOrFail(config)
  // Loaded here, so that the other commands start without the server and its plugins.
  const { ListenError, startGateway } = await import('../server.js')
  let gateway
  try {
    gateway = await startGateway(config, policies)
  } catch (err) {
    if (err instanceof ListenError) throw new CliError(err.message, 1)
    throw err
  }
  gateway.app.log.info({
    port: gateway.port, redirectPort: gateway.redirectPort, store: gateway.store.kind, roles: [...policies.roles.keys()]
  }, 'labelgate listening')
  closeWithGrace({ delay: 10_000 }, async ({ err }) => {
    if (err) gateway.app.log.error({ err }, 'shutting down after an error')
    await gateway.close()
  })
}

function check (flags: { config?: string | undefined }): void {
  const problems: string[] = []
  let config: GatewayConfig | null = null
  try {
    config = loadConfigOrFail(flags.config)
  } catch (err) {
    if (!(err instanceof CliError)) throw err
    problems.push(err.message)
  }
  if (config) {
    try {
      loadPoliciesOrFail(config)
    } catch (err) {
      if (!(err instanceof CliError)) throw err
      problems.push(err.message)
    }
  }
  if (problems.length > 0) throw new CliError(problems.join('\n'), 1)
  process.stdout.write(`ok: ${configPath(flags.config)} and its policies are valid\n`)
}

type ConfigFlag = { config?: string | undefined }

/** Runs a store command. Only `token create` may seal a Label Studio token, so only it needs the key. */
async function withStore (
  flags: ConfigFlag, run: (ctx: id.CommandContext) => Promise<void>, needsKey = false
): Promise<void> {
  // Token and user commands never reach a storage: its credentials need not be present.
  const config = loadConfigOrFail(flags.config, { lazySecrets: !needsKey, lazyStorageSecrets: true })
  const store = openIdentityStore(config.identity)
  const ctx = {
    config,
    store,
    out: (t: string) => process.stdout.write(t + '\n'),
    err: (t: string) => process.stderr.write(t + '\n')
  }
  try {
    await store.ready()
    await run(ctx)
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(`the identity store failed: ${(err as Error).message}`, 1)
  } finally {
    await store.close()
  }
}

type Values = Record<string, string | boolean | string[] | undefined>

async function dispatch (command: string, sub: string | undefined, rest: string[], values: Values): Promise<void> {
  const flags = { config: values.config as string | undefined }
  switch (`${command} ${sub ?? ''}`.trim()) {
    case 'serve': return await serve(flags)
    case 'check': return check(flags)
    case 'token create': return await withStore(flags, (ctx) => id.tokenCreate(ctx, values), true)
    case 'token register': return await withStore(flags, (ctx) => id.tokenRegister(ctx, values))
    case 'token list': return await withStore(flags, (ctx) => id.tokenList(ctx, values))
    case 'token revoke': return await withStore(flags, (ctx) => id.tokenRevoke(ctx, rest[0]))
    case 'user set': return await withStore(flags, (ctx) => id.userSet(ctx, rest[0], values))
    case 'user disable': return await withStore(flags, (ctx) => id.userSetDisabled(ctx, rest[0], true))
    case 'user enable': return await withStore(flags, (ctx) => id.userSetDisabled(ctx, rest[0], false))
    case 'user list': return await withStore(flags, (ctx) => id.userList(ctx, values))
    case 'policy test': {
      const config = loadConfigOrFail(flags.config, { lazySecrets: true })
      return policy.policyTest(config, loadPoliciesOrFail(config), rest, print)
    }
    case 'policy explain': {
      const config = loadConfigOrFail(flags.config, { lazySecrets: true })
      const role = values.role
      if (typeof role !== 'string') throw new CliError('policy explain needs --role ROLE', 2)
      const request = {
        role,
        method: rest[0],
        path: rest[1],
        bodyFile: typeof values.body === 'string' ? values.body : undefined,
        projects: typeof values.projects === 'string' ? values.projects : undefined,
        objects: Array.isArray(values.object) ? values.object : []
      }
      return policy.policyExplain(loadPoliciesOrFail(config), request, print)
    }
    case 'policy diff': return policy.policyDiff(rest[0], rest[1], print)
    default: {
      const name = [command, sub].filter(Boolean).join(' ')
      throw new CliError(`unknown command "${name}"\n\n${HELP[command] ?? MAIN_HELP}`, 2)
    }
  }
}

export async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    process.stderr.write(`labelgate: ${(err as Error).message}\nRun 'labelgate --help' for usage.\n`)
    return 2
  }
  const [command, sub, ...rest] = parsed.positionals
  if (parsed.values.help === true || command === undefined || command === 'help') {
    process.stdout.write((command !== undefined && HELP[command]) || MAIN_HELP)
    return command === undefined && parsed.values.help !== true ? 2 : 0
  }
  const oneWord = command === 'serve' || command === 'check'
  if (oneWord && sub !== undefined) {
    process.stderr.write(`labelgate: ${command} takes no arguments besides options\n\n${HELP[command] ?? MAIN_HELP}`)
    return 2
  }
  try {
    await dispatch(command, oneWord ? undefined : sub, rest, parsed.values)
    return 0
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`labelgate: ${err.message}\n`)
      return err.exitCode
    }
    process.stderr.write(`labelgate: ${(err as Error).stack ?? String(err)}\n`)
    return 1
  }
}
