import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config/load.js'

// storage: in gateway.yaml, through loadConfig: what a valid section resolves to, and each mistake
// reported at its place in the file. Secrets come from a fake environment and from files.

const AZURE_KEY = Buffer.from('k'.repeat(64)).toString('base64')
const ENV = {
  S3_ID: 'AKIAEXAMPLE',
  S3_SECRET: 's3-secret-value',
  S3_SESSION: 'session-token-value',
  GCS_ID: 'GOOG1EXAMPLE',
  GCS_SECRET: 'gcs-secret-value',
  AZ_KEY: AZURE_KEY,
  LINK_1: 'a'.repeat(32),
  LINK_2: 'b'.repeat(40)
}

interface Fixture { testdir: typeof t.testdir }

/** A folder with certificates, files/{data,other} and a secret file, and gateway.yaml with `lines`. */
function writeConfig (t: Fixture, lines: string[]): { dir: string, file: string } {
  const dir = t.testdir({
    'c.crt': 'x',
    'c.key': 'x',
    'sas.txt': '?sv=2021-08-06&sp=r&sig=abc%3D\n',
    files: { data: { nested: {} }, other: {} },
    'files-sibling': {},
    outside: {}
  })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, ['tls: { cert: c.crt, key: c.key }', 'upstream: { url: "http://ls:8080" }', ...lines].join('\n') + '\n')
  return { dir, file }
}

/** loadConfig's message for a configuration, or '' when it loads. */
function problemsOf (t: Fixture, lines: string[], env: NodeJS.ProcessEnv = ENV): string {
  const { file } = writeConfig(t, lines)
  try {
    loadConfig(file, { env })
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

t.test('a storage section with each kind of backend loads, secrets read from the environment and files', async (t) => {
  const { dir, file } = writeConfig(t, [
    'storage:',
    '  local_files_root: files',
    '  uploads_root: files/other',
    '  link_ttl: 10m',
    '  link_keys:',
    '    - { id: new, secret: { env: LINK_2 } }',
    '    - { id: old, secret: { env: LINK_1 } }',
    '  backends:',
    '    - name: aws',
    '      type: s3',
    '      buckets: [images, audio]',
    '      projects: [3, 4]',
    '      region: eu-west-1',
    '      access_key_id: { env: S3_ID }',
    '      secret_access_key: { env: S3_SECRET }',
    '      session_token: { env: S3_SESSION }',
    '      signed_links: true',
    '    - name: minio',
    '      type: s3',
    '      buckets: [local-bucket]',
    '      projects: all',
    '      region: us-east-1',
    '      endpoint: "https://minio.internal:9000/base/"',
    '      access_key_id: { env: S3_ID }',
    '      secret_access_key: { env: S3_SECRET }',
    '    - name: minio-vhost',
    '      type: s3',
    '      buckets: [vhost-bucket]',
    '      projects: all',
    '      region: us-east-1',
    '      endpoint: "http://store.internal"',
    '      path_style: false',
    '      access_key_id: { env: S3_ID }',
    '      secret_access_key: { env: S3_SECRET }',
    '    - name: scans',
    '      type: gcs',
    '      buckets: [images]',
    '      projects: all',
    '      access_key_id: { env: GCS_ID }',
    '      secret_access_key: { env: GCS_SECRET }',
    '    - name: frames',
    '      type: azure',
    '      account: labellingstore',
    '      containers: [frames, images]',
    '      projects: [3]',
    '      account_key: { env: AZ_KEY }',
    '    - name: frames-sas',
    '      type: azure',
    '      account: otherstore',
    '      endpoint: "http://127.0.0.1:10000/otherstore"',
    '      containers: [sas-frames]',
    '      projects: [5]',
    '      sas_token: { file: sas.txt }',
    '    - name: datasets',
    '      type: local',
    '      path: files/data',
    '      projects: [5]'
  ])
  const storage = loadConfig(file, { env: ENV }).storage
  t.same(storage.backends.map((b) => b.name), ['aws', 'minio', 'minio-vhost', 'scans', 'frames', 'frames-sas', 'datasets'])
  const [aws, minio, vhost, scans, frames, sas, datasets] = storage.backends
  t.same(aws, {
    name: 'aws',
    projects: [3, 4],
    signedLinks: true,
    type: 's3',
    buckets: ['images', 'audio'],
    region: 'eu-west-1',
    endpoint: null,
    pathStyle: false,
    accessKeyId: 'AKIAEXAMPLE',
    secretAccessKey: 's3-secret-value',
    sessionToken: 'session-token-value'
  })
  t.match(minio, { type: 's3', endpoint: 'https://minio.internal:9000/base', pathStyle: true, sessionToken: null, projects: 'all' },
    'with an endpoint: path style, no trailing slash')
  t.match(vhost, { endpoint: 'http://store.internal', pathStyle: false }, 'path_style: false is kept')
  t.match(scans, {
    type: 'gcs',
    buckets: ['images'],
    region: 'auto',
    endpoint: 'https://storage.googleapis.com',
    pathStyle: true,
    accessKeyId: 'GOOG1EXAMPLE',
    secretAccessKey: 'gcs-secret-value',
    sessionToken: null
  }, 'gcs defaults: its XML API, region auto, path style')
  t.match(frames, {
    type: 'azure',
    account: 'labellingstore',
    containers: ['frames', 'images'],
    endpoint: 'https://labellingstore.blob.core.windows.net',
    sasToken: null
  })
  t.same(frames?.type === 'azure' ? frames.accountKey : null, Buffer.from('k'.repeat(64)), 'the account key, decoded')
  t.match(sas, { type: 'azure', endpoint: 'http://127.0.0.1:10000/otherstore', accountKey: null, sasToken: 'sv=2021-08-06&sp=r&sig=abc%3D' },
    'a SAS from a file, without its "?" and its line end')
  t.same(datasets, { name: 'datasets', projects: [5], signedLinks: false, type: 'local', path: join(dir, 'files', 'data') })
  t.equal(storage.localFilesRoot, join(dir, 'files'))
  t.equal(storage.uploadsRoot, join(dir, 'files', 'other'))
  t.equal(storage.linkTtlMs, 600_000)
  t.same(storage.linkKeys, [{ id: 'new', secret: Buffer.from('b'.repeat(40)) }, { id: 'old', secret: Buffer.from('a'.repeat(32)) }])
  t.ok(Object.isFrozen(storage.backends[0]), 'frozen')
})

t.test('storage defaults: no backends, the documented timeouts', async (t) => {
  const { file } = writeConfig(t, [])
  t.match(loadConfig(file, { env: {} }).storage, {
    backends: [],
    localFilesRoot: null,
    uploadsRoot: null,
    referenceCacheTtlMs: 30_000,
    connectTimeoutMs: 5_000,
    headersTimeoutMs: 30_000,
    timeoutMs: 600_000,
    linkTtlMs: 300_000,
    linkKeys: []
  })
})

const S3 = (name: string, extra = '', buckets = '[images]'): string =>
  `    - { name: ${name}, type: s3, buckets: ${buckets}, projects: all, region: us-east-1, ` +
  `access_key_id: { env: S3_ID }, secret_access_key: { env: S3_SECRET }${extra} }`

t.test('each mistake is reported at its place in the file', async (t) => {
  const cases: Array<[string, string[], RegExp[]]> = [
    ['an s3 backend without region', [
      'storage:',
      '  backends:',
      '    - { name: a, type: s3, buckets: [x], projects: all, access_key_id: { env: S3_ID }, secret_access_key: { env: S3_SECRET } }'
    ], [/:5:\d+ \/storage\/backends\/0: type s3 needs region/]],
    ['a bucket backend without buckets', [
      'storage:',
      '  backends:',
      '    - { name: a, type: s3, region: eu-west-1, projects: all, access_key_id: { env: S3_ID }, secret_access_key: { env: S3_SECRET } }',
      '    - { name: b, type: gcs, projects: all, access_key_id: { env: GCS_ID }, secret_access_key: { env: GCS_SECRET } }'
    ], [/:5:\d+ \/storage\/backends\/0: type s3 needs buckets/, /:6:\d+ \/storage\/backends\/1: type gcs needs buckets/]],
    ['an azure backend without containers or account', [
      'storage:',
      '  backends:',
      '    - { name: a, type: azure, projects: all, account_key: { env: AZ_KEY } }'
    ], [/:5:\d+ \/storage\/backends\/0: type azure needs account/, /:5:\d+ \/storage\/backends\/0: type azure needs containers/]],
    ['credentials missing', [
      'storage:',
      '  backends:',
      '    - { name: a, type: s3, buckets: [x], region: eu-west-1, projects: all }'
    ], [/:5:\d+ \/storage\/backends\/0: type s3 needs access_key_id/, /:5:\d+ \/storage\/backends\/0: type s3 needs secret_access_key/]],
    ['two backends serving one bucket', [
      'storage:',
      '  backends:',
      S3('a', '', '[images, audio]'),
      S3('b', '', '[video, audio]')
    ], [/:6:\d+ \/storage\/backends\/1: s3:\/\/audio is already served by backend "a"/]],
    ['two azure backends serving one container', [
      'storage:',
      '  backends:',
      '    - { name: a, type: azure, account: acct1, containers: [frames], projects: all, account_key: { env: AZ_KEY } }',
      '    - { name: b, type: azure, account: acct2, containers: [frames], projects: all, account_key: { env: AZ_KEY } }'
    ], [/:6:\d+ \/storage\/backends\/1: azure-blob:\/\/frames is already served by backend "a"/]],
    ['a bucket listed twice', ['storage:', '  backends:', S3('a', '', '[x, x]')],
      [/:5:\d+ \/storage\/backends\/0: s3:\/\/x is listed twice/]],
    ['two backends with one name', ['storage:', '  backends:', S3('same', '', '[x]'), S3('same', '', '[y]')],
      [/:6:\d+ \/storage\/backends\/1\/name: another backend is already named "same"/]],
    ['an azure backend with both account_key and sas_token', [
      'storage:',
      '  backends:',
      '    - { name: a, type: azure, account: acct1, containers: [c], projects: all, account_key: { env: AZ_KEY }, sas_token: { env: S3_ID } }'
    ], [/:5:\d+ \/storage\/backends\/0: type azure needs one of account_key and sas_token/]],
    ['an azure backend with neither', [
      'storage:',
      '  backends:',
      '    - { name: a, type: azure, account: acct1, containers: [c], projects: all }'
    ], [/:5:\d+ \/storage\/backends\/0: type azure needs one of account_key and sas_token/]],
    ['an azure key that is not base64', [
      'storage:',
      '  backends:',
      '    - { name: a, type: azure, account: acct1, containers: [c], projects: all, account_key: { env: BAD_KEY } }',
      '    - { name: b, type: azure, account: acct2, containers: [d], projects: all, account_key: { env: URL_KEY } }'
    ], [/:5:\d+ \/storage\/backends\/0\/account_key: must be the account key as Azure shows it \(64 bytes in base64\)/,
      /:6:\d+ \/storage\/backends\/1\/account_key: must be the account key as Azure shows it \(64 bytes in base64\)/]],
    ['a local backend outside local_files_root', [
      'storage:',
      '  local_files_root: files',
      '  backends:',
      '    - { name: a, type: local, path: outside, projects: all }',
      '    - { name: b, type: local, path: files-sibling, projects: all }',
      '    - { name: c, type: local, path: files/data/../../outside, projects: all }'
    ], [/:6:\d+ \/storage\/backends\/0\/path: must be inside local_files_root \(.*files\)/,
      /:7:\d+ \/storage\/backends\/1\/path: must be inside local_files_root/,
      /:8:\d+ \/storage\/backends\/2\/path: must be inside local_files_root/]],
    ['a local backend without local_files_root', [
      'storage:',
      '  backends:',
      '    - { name: a, type: local, path: files/data, projects: all }'
    ], [/:5:\d+ \/storage\/backends\/0: type local needs storage.local_files_root/]],
    ['a local backend whose folder is missing', [
      'storage:',
      '  local_files_root: files',
      '  backends:',
      '    - { name: a, type: local, path: files/none, projects: all }'
    ], [/:6:\d+ \/storage\/backends\/0\/path: directory .*files\/none does not exist or cannot be read/]],
    ['a local backend without path', [
      'storage:',
      '  local_files_root: files',
      '  backends:',
      '    - { name: a, type: local, projects: all }'
    ], [/:6:\d+ \/storage\/backends\/0: type local needs path/]],
    ['a local backend giving links', [
      'storage:',
      '  local_files_root: files',
      '  link_keys: [{ id: k, secret: { env: LINK_1 } }]',
      '  backends:',
      '    - { name: a, type: local, path: files/data, projects: all, signed_links: true }'
    ], [/:7:\d+ \/storage\/backends\/0\/signed_links: local files are served by path; links apply to buckets/]],
    ['signed_links without link_keys', ['storage:', '  backends:', S3('a', ', signed_links: true')],
      [/:\d+:\d+ \/storage\/backends\/0\/signed_links: signed links need at least one key in storage.link_keys/]],
    ['a link key shorter than 32 bytes', [
      'storage:',
      '  link_keys:',
      '    - { id: ok, secret: { env: LINK_1 } }',
      '    - { id: short, secret: { env: SHORT } }'
    ], [/:6:\d+ \/storage\/link_keys\/1\/secret: a link key must be at least 32 bytes long/]],
    ['two link keys with one id', [
      'storage:',
      '  link_keys:',
      '    - { id: k, secret: { env: LINK_1 } }',
      '    - { id: k, secret: { env: LINK_2 } }'
    ], [/\/storage\/link_keys: two link keys have the same id/]],
    ['a link_ttl over an hour', ['storage:', '  link_ttl: 61m'], [/:4:\d+ \/storage\/link_ttl: must be at most 1h/]],
    ['a secret whose environment variable is unset', [
      'storage:',
      '  link_keys: [{ id: k, secret: { env: NO_LINK } }]',
      '  backends:',
      '    - { name: a, type: s3, buckets: [x], projects: all, region: us-east-1, access_key_id: { env: NO_ID },',
      '        secret_access_key: { env: S3_SECRET }, session_token: { env: NO_SESSION } }',
      '    - { name: b, type: azure, account: acct1, containers: [c], projects: all, sas_token: { env: NO_SAS } }'
    ], [/:4:\d+ \/storage\/link_keys\/0\/secret: environment variable NO_LINK is not set/,
      /:6:\d+ \/storage\/backends\/0\/access_key_id: environment variable NO_ID is not set/,
      /:7:\d+ \/storage\/backends\/0\/session_token: environment variable NO_SESSION is not set/,
      /:8:\d+ \/storage\/backends\/1\/sas_token: environment variable NO_SAS is not set/]],
    ['a secret file that is missing', [
      'storage:',
      '  backends:',
      '    - { name: a, type: azure, account: acct1, containers: [c], projects: all, account_key: { file: nope.key } }'
    ], [/:5:\d+ \/storage\/backends\/0\/account_key: secret file .*nope\.key cannot be read \(ENOENT\)/]],
    ['endpoints that are not plain http(s) URLs', [
      'storage:',
      '  backends:',
      S3('a', ', endpoint: "https://minio.internal/?x=1"', '[a]'),
      S3('b', ', endpoint: "https://user:pw@minio.internal"', '[b]'),
      S3('c', ', endpoint: "https://minio.internal/#f"', '[c]'),
      S3('d', ', endpoint: "ftp://minio.internal"', '[d]'),
      S3('e', ', endpoint: "minio.internal:9000"', '[e]'),
      '    - { name: f, type: azure, account: acct1, containers: [c], projects: all, account_key: { env: AZ_KEY },' +
        ' endpoint: "https://acct1.blob.core.windows.net?sv=1" }'
    ], [
      /:5:\d+ \/storage\/backends\/0\/endpoint: must be an http or https URL without query, fragment or credentials/,
      /:6:\d+ \/storage\/backends\/1\/endpoint: must be an http or https URL without query, fragment or credentials/,
      /:7:\d+ \/storage\/backends\/2\/endpoint: must be an http or https URL without query, fragment or credentials/,
      /:8:\d+ \/storage\/backends\/3\/endpoint: must be an http or https URL without query, fragment or credentials/,
      /:9:\d+ \/storage\/backends\/4\/endpoint: must be an http or https URL/,
      /:10:\d+ \/storage\/backends\/5\/endpoint: must be an http or https URL without query, fragment or credentials/
    ]],
    ['keys that do not apply to the type', [
      'storage:',
      '  local_files_root: files',
      '  backends:',
      S3('a', ', containers: [c], account: acct1, path: files/data', '[a]'),
      '    - { name: g, type: gcs, buckets: [g], projects: all, access_key_id: { env: GCS_ID }, secret_access_key: { env: GCS_SECRET },',
      '        session_token: { env: S3_SESSION }, sas_token: { env: S3_ID } }',
      '    - { name: z, type: azure, account: acct1, containers: [c], projects: all, account_key: { env: AZ_KEY },',
      '        buckets: [b], region: westeurope, path_style: true, access_key_id: { env: S3_ID } }',
      '    - { name: l, type: local, path: files/data, projects: all, buckets: [l], endpoint: "https://x", account_key: { env: AZ_KEY } }'
    ], [
      /:6:\d+ \/storage\/backends\/0\/containers: does not apply to type s3/,
      /:6:\d+ \/storage\/backends\/0\/account: does not apply to type s3/,
      /:6:\d+ \/storage\/backends\/0\/path: does not apply to type s3/,
      /:8:\d+ \/storage\/backends\/1\/session_token: does not apply to type gcs/,
      /:8:\d+ \/storage\/backends\/1\/sas_token: does not apply to type gcs/,
      /:10:\d+ \/storage\/backends\/2\/buckets: does not apply to type azure/,
      /:10:\d+ \/storage\/backends\/2\/region: does not apply to type azure/,
      /:10:\d+ \/storage\/backends\/2\/path_style: does not apply to type azure/,
      /:10:\d+ \/storage\/backends\/2\/access_key_id: does not apply to type azure/,
      /:11:\d+ \/storage\/backends\/3\/buckets: does not apply to type local/,
      /:11:\d+ \/storage\/backends\/3\/endpoint: does not apply to type local/,
      /:11:\d+ \/storage\/backends\/3\/account_key: does not apply to type local/
    ]]
  ]
  const env = { ...ENV, SHORT: 'x'.repeat(31), BAD_KEY: 'not base64!', URL_KEY: 'ab-_cd==' }
  for (const [name, lines, patterns] of cases) {
    const message = problemsOf(t, lines, env)
    t.match(message, /^The configuration is invalid:/, name)
    for (const re of patterns) t.match(message, re, `${name}: ${re.source}`)
  }
})

t.test('problems never quote a secret', async (t) => {
  const secret = 'SuperSecret+Value/With=Padding!'
  const message = problemsOf(t, [
    'storage:',
    '  link_keys: [{ id: k, secret: { env: LINK_SHORT } }]',
    '  backends:',
    '    - { name: a, type: azure, account: acct1, containers: [c], projects: all, account_key: { env: BAD } }'
  ], { BAD: secret, LINK_SHORT: 'short-link-secret' })
  t.match(message, /account_key: must be the account key/)
  t.match(message, /link_keys\/0\/secret: a link key must be at least 32 bytes long/)
  t.notOk(message.includes(secret))
  t.notOk(message.includes('short-link-secret'))
})

t.test('different schemes may use one bucket name; the same backend serves s3 and gs only by its type', async (t) => {
  t.equal(problemsOf(t, [
    'storage:',
    '  backends:',
    S3('a', '', '[shared]'),
    '    - { name: b, type: gcs, buckets: [shared], projects: all, access_key_id: { env: GCS_ID }, secret_access_key: { env: GCS_SECRET } }',
    '    - { name: c, type: azure, account: acct1, containers: [shared], projects: all, account_key: { env: AZ_KEY } }'
  ]), '')
})

t.test('missing secrets are left unread with lazySecrets, and still reported without it', async (t) => {
  const { file } = writeConfig(t, ['storage:', '  backends:', S3('a')])
  t.throws(() => loadConfig(file, { env: {} }), /access_key_id: environment variable S3_ID is not set/)
  const storage = loadConfig(file, { env: {}, lazySecrets: true }).storage
  t.match(storage.backends[0], { name: 'a', accessKeyId: '', secretAccessKey: '' })
})
