import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { TSchema } from '@sinclair/typebox'
import { PATTERN_HINTS } from './schema.js'
import { problemAt, type PathSegment, type Problem, type YamlSource } from './source-map.js'

// Schema validation shared by the configuration and the policies: Ajv over a TypeBox schema, with
// every error mapped back to the YAML position it came from and phrased for the person editing it.

export function compileSchema (schema: TSchema): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true, verbose: true })
  return ajv.compile(schema)
}

function parsePointer (instancePath: string): PathSegment[] {
  if (instancePath === '') return []
  return instancePath.slice(1).split('/').map((s) => {
    const text = s.replaceAll('~1', '/').replaceAll('~0', '~')
    return /^[0-9]+$/.test(text) ? Number(text) : text
  })
}

function unionMessage (error: ErrorObject): string {
  const schema = error.parentSchema as { description?: string, anyOf?: Array<{ const?: unknown }> } | undefined
  const consts = (schema?.anyOf ?? []).map((s) => s.const).filter((c) => c !== undefined)
  if (consts.length > 0 && consts.length === schema?.anyOf?.length) return `must be one of ${consts.join(', ')}`
  return `must be ${schema?.description ?? 'one of the allowed forms'}`
}

function describe (error: ErrorObject): { path: PathSegment[], message: string, key: boolean } {
  const path = parsePointer(error.instancePath)
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(params.additionalProperty)
      return { path: [...path, name], message: `unknown option "${name}"`, key: true }
    }
    case 'required':
      return { path, message: `missing required option "${String(params.missingProperty)}"`, key: false }
    case 'anyOf':
      return { path, message: unionMessage(error), key: false }
    case 'pattern':
      return {
        path, message: PATTERN_HINTS[String(params.pattern)] ?? `must match ${String(params.pattern)}`, key: false
      }
    default:
      return { path, message: error.message ?? 'is invalid', key: false }
  }
}

/** Validates `value` (the YAML turned to JS) and returns positioned problems, one per real mistake. */
export function validateAgainst (validate: ValidateFunction, source: YamlSource, value: unknown): Problem[] {
  if (validate(value)) return []
  const errors = validate.errors ?? []
  // A union reports one error per branch besides its own; keep only the union's summary.
  const unions = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath + '/')
  const kept = errors.filter((e) => !unions.some((prefix) => e.schemaPath.startsWith(prefix)))
  return kept.map((e) => {
    const { path, message, key } = describe(e)
    return problemAt(source, path, message, key)
  })
}
