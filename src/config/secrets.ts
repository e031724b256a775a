import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { SecretRefValue } from './schema.js'

/** Reads a secret named by the configuration. Returns the value, or a message saying what is missing. */
export type SecretResult = { value: string } | { error: string }

export function readSecret (ref: SecretRefValue, baseDir: string, env: NodeJS.ProcessEnv): SecretResult {
  if ('env' in ref) {
    const value = env[ref.env]
    if (value === undefined || value === '') return { error: `environment variable ${ref.env} is not set` }
    return { value }
  }
  const path = resolve(baseDir, ref.file)
  try {
    const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '')
    if (value === '') return { error: `secret file ${path} is empty` }
    return { value }
  } catch (err) {
    return { error: `secret file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` }
  }
}

/** An AES-256 key written as 64 hex digits or as base64 of 32 bytes. */
export function parseKey (text: string): Buffer | null {
  const trimmed = text.trim()
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex')
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    const key = Buffer.from(trimmed, 'base64')
    if (key.length === 32) return key
  }
  return null
}
