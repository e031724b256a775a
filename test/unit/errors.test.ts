import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import * as errors from '../../src/errors.js'
import { REPO_ROOT } from '../support/tmp.js'

// These stop the process before it listens; they never reach a client.
const STARTUP = new Set(['LG_ERR_CONFIG_INVALID', 'LG_ERR_POLICY_INVALID'])

const catalogue = Object.entries(errors).filter(([name]) => name.startsWith('LG_ERR_')) as Array<[string, new () => Error & { code: string, statusCode?: number }]>

t.test('each code equals its export name, and codes are unique', async (t) => {
  t.ok(catalogue.length >= 15)
  const codes = new Set<string>()
  for (const [name, Ctor] of catalogue) {
    const err = new Ctor()
    t.equal(err.code, name)
    t.notOk(codes.has(err.code))
    codes.add(err.code)
  }
})

t.test('request errors are 4xx and dependency errors 5xx', async (t) => {
  for (const [name, Ctor] of catalogue) {
    const status = new Ctor().statusCode
    if (STARTUP.has(name)) continue
    if (/^LG_ERR_(REQUEST|CORS|AUTH|POLICY|PROJECT|CSRF|PASSWORD|SIGNUP|RATE|MEDIA)_/.test(name)) t.ok(status !== undefined && status >= 400 && status < 500, `${name} ${status}`)
    else if (/^LG_ERR_(UPSTREAM|TOKEN_STORE|STORAGE|INTERNAL|NOT_READY)/.test(name)) t.ok(status !== undefined && status >= 500, `${name} ${status}`)
    else t.fail(`${name} belongs to no known area`)
  }
})

t.test('the README error table lists every code with its status', async (t) => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
  for (const [name, Ctor] of catalogue) {
    const status = STARTUP.has(name) ? 'exit 1' : String(new Ctor().statusCode)
    const row = new RegExp(`^\\| \`${name}\` \\| ${status} \\|`, 'm')
    t.match(readme, row, `${name} has a row`)
  }
})
