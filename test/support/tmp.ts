import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Teardown { teardown: (fn: () => unknown) => void }

/** A fresh temporary folder, removed when the test ends. */
export function tempDir (t: Teardown, prefix = 'labelgate-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A development CA and a certificate for localhost and 127.0.0.1, made by the project's own script. */
export function makeCertificates (dir: string): { ca: string, cert: string, key: string } {
  execFileSync('bash', [join(REPO_ROOT, 'certs/make-dev-certs.sh'), dir], { stdio: 'ignore' })
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') }
}
