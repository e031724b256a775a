import { execFileSync } from 'node:child_process'
import { existsSync, renameSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The script in certs/ that makes a development CA and certificate; the only code that does. */
export const DEV_CERT_SCRIPT = fileURLToPath(new URL('../../../certs/make-dev-certs.sh', import.meta.url))

/**
 * Makes a development certificate at `certFile`/`keyFile` when neither exists. Returns the CA
 * file that clients should trust, or null when the files were already there.
 */
export function ensureDevCertificate (certFile: string, keyFile: string): string | null {
  if (existsSync(certFile) || existsSync(keyFile)) return null
  const dir = dirname(certFile)
  execFileSync('bash', [DEV_CERT_SCRIPT, dir], { stdio: ['ignore', 'ignore', 'pipe'] })
  const madeCert = join(dir, 'server.crt')
  const madeKey = join(dir, 'server.key')
  if (madeCert !== certFile) renameSync(madeCert, certFile)
  if (madeKey !== keyFile) renameSync(madeKey, keyFile)
  return join(dir, 'ca.crt')
}
