import { readdirSync, readFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { LG_ERR_POLICY_INVALID } from '../errors.js'
import { parseYamlSource, problemAt, formatProblems, type Problem, type YamlSource } from '../config/source-map.js'
import { compileSchema, validateAgainst } from '../config/validate.js'
import { errnoCode } from '../config/load.js'
import { PolicyFileSchema, type RawPolicyFile } from './schema.js'
import { compileRole, type CompiledRole, type PolicySet } from './compile.js'

const validatePolicyFile = compileSchema(PolicyFileSchema)

function isPolicyFile (name: string): boolean {
  return name.endsWith('.yaml') || name.endsWith('.yml')
}

interface PolicyFile { source: YamlSource, raw: RawPolicyFile }

function readPolicyFile (file: string, problems: Problem[]): PolicyFile | null {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    problems.push({ file, line: 1, col: 1, path: '', message: `cannot read the file (${errnoCode(err)})` })
    return null
  }
  const parsed = parseYamlSource(file, text)
  problems.push(...parsed.problems)
  if (parsed.source.doc.errors.some((e) => e.code !== 'DUPLICATE_KEY')) return null
  const raw: unknown = parsed.source.doc.toJS() ?? {}
  problems.push(...validateAgainst(validatePolicyFile, parsed.source, raw))
  // Returned even when the schema check failed, so that the semantic checks report their problems too.
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null
  return { source: parsed.source, raw: raw as RawPolicyFile }
}

/**
 * Loads every policy file of a folder as one set. All problems of all files are collected and thrown
 * together as LG_ERR_POLICY_INVALID, so that a reviewer sees every mistake in one run.
 */
export function loadPolicies (dir: string): PolicySet {
  const folder = resolve(dir)
  const problems: Problem[] = []
  let names: string[] = []
  try {
    names = readdirSync(folder).filter(isPolicyFile).sort()
  } catch (err) {
    const message = `cannot read the policy folder (${errnoCode(err)})`
    problems.push({ file: folder, line: 1, col: 1, path: '', message })
  }
  if (names.length === 0 && problems.length === 0) {
    problems.push({ file: folder, line: 1, col: 1, path: '', message: 'holds no policy files (*.yaml)' })
  }
  const roles = new Map<string, CompiledRole>()
  for (const name of names) {
    const file = join(folder, name)
    const loaded = readPolicyFile(file, problems)
    if (!loaded) continue
    const { source, raw } = loaded
    if (typeof raw.role !== 'string') continue
    const stem = basename(name).replace(/\.ya?ml$/, '')
    if (raw.role !== stem) {
      problems.push(problemAt(source, ['role'], `the role "${raw.role}" must be in a file named ${raw.role}.yaml`))
    }
    const other = roles.get(raw.role)
    if (other) problems.push(problemAt(source, ['role'], `role "${raw.role}" is already defined in ${other.file}`))
    const compiled = compileRole(source, raw, problems)
    if (!other) roles.set(raw.role, compiled)
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col)
    throw Object.assign(new LG_ERR_POLICY_INVALID(formatProblems(problems)), { problems })
  }
  return { dir: folder, roles }
}
