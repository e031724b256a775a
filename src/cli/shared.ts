import { loadConfig, problemInFile, type LoadOptions } from '../config/load.js'
import { formatProblem } from '../config/source-map.js'
import type { GatewayConfig } from '../config/types.js'
import { loadPolicies } from '../policy/load.js'
import type { PolicySet } from '../policy/compile.js'

/** A command-line failure: exit code 1 for a finding, 2 for misuse. */
export class CliError extends Error {
  constructor (message: string, readonly exitCode: 1 | 2) {
    super(message)
  }
}

export function configPath (flag: string | undefined): string {
  return flag ?? process.env.LABELGATE_CONFIG ?? 'gateway.yaml'
}

export function loadConfigOrFail (flag: string | undefined, options: LoadOptions = {}): GatewayConfig {
  try {
    return loadConfig(configPath(flag), options)
  } catch (err) {
    if ((err as { code?: string }).code === 'LG_ERR_CONFIG_INVALID') throw new CliError((err as Error).message, 1)
    throw err
  }
}

/** The policy set, checked against the configuration's default role; problems become a finding. */
export function loadPoliciesOrFail (config: GatewayConfig): PolicySet {
  try {
    const policies = loadPolicies(config.policies.dir)
    const role = config.identity.defaultRole
    if (role !== null && !policies.roles.has(role)) {
      const message = `no role "${role}" in ${config.policies.dir}`
      const problem = problemInFile(config.file, ['identity', 'default_role'], message)
      throw new CliError(formatProblem(problem), 1)
    }
    return policies
  } catch (err) {
    if ((err as { code?: string }).code === 'LG_ERR_POLICY_INVALID') throw new CliError((err as Error).message, 1)
    throw err
  }
}

export async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').trim()
}

export function formatTime (ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Prints rows as aligned columns. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** `--projects`: "all", "none", or project ids such as 3,7 (whole numbers of at most 15 digits, from 1). */
export function parseProjectList (text: unknown): 'all' | number[] {
  if (text === 'all') return 'all'
  if (text === 'none') return []
  if (typeof text !== 'string' || !/^[1-9][0-9]{0,14}(,[1-9][0-9]{0,14})*$/.test(text)) {
    throw new CliError('--projects must be "all", "none" or project ids such as 3,7', 2)
  }
  return [...new Set(text.split(',').map(Number))].sort((a, b) => a - b)
}
