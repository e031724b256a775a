import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { loggerOptions } from '../../src/logging.js'

/** A real pino logger, configured as the gateway's, whose lines are kept as text and as JSON. */
export interface LogCapture {
  logger: Logger
  lines: string[]
  entries: () => Array<Record<string, unknown>>
  accessLines: () => Array<Record<string, unknown>>
}

export function captureLogs (level = 'info'): LogCapture {
  const lines: string[] = []
  let partial = ''
  const sink = new Writable({
    write (chunk, _enc, done) {
      partial += chunk.toString()
      const parts = partial.split('\n')
      partial = parts.pop() ?? ''
      lines.push(...parts.filter((l) => l !== ''))
      done()
    }
  })
  const logger = pino(loggerOptions(level), sink)
  const entries = (): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  return { logger, lines, entries, accessLines: () => entries().filter((e) => e.msg === 'request') }
}
