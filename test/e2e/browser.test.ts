import { createHash, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { chromium, type Page } from 'playwright-core'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startTestGateway } from '../support/gateway.js'

// A real headless Chromium: pages on two loopback origins call the gateway with fetch, as a web
// app would. Only the listed origin's page reads the answer; the other's fetch fails in the
// browser and Label Studio never hears of it. Then the browser opens uploaded files through the
// gateway, and their scripts do not run.

const CHROMIUM = '/usr/bin/chromium'
const [ADMIN, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]

// The app page's own script: one fetch, its outcome as plain data.
const APP_PAGE = `<!DOCTYPE html><html><head><title>app</title><script>
window.callGateway = async (url, init) => {
  try {
    const res = await fetch(url, init)
    return { status: res.status, body: await res.json(), requestId: res.headers.get('x-request-id') }
  } catch (err) {
    return { error: err.name, message: err.message }
  }
}
</script></head><body></body></html>`

interface Outcome { status?: number, body?: Record<string, unknown>, requestId?: string | null, error?: string }

async function servePage (t: Test): Promise<string> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(APP_PAGE)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** The SHA-256 of a certificate's public key, as Chromium's --ignore-certificate-errors-spki-list takes it. */
function spkiHash (certFile: string): string {
  const spki = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}

t.ok(existsSync(CHROMIUM), `${CHROMIUM} is installed (scripts/test.sh installs Debian's chromium)`)

const upstream = await startLabelStudioStandIn()
t.teardown(() => upstream.close())
const allowedOrigin = await servePage(t)
const refusedOrigin = await servePage(t)
const gw = await startTestGateway(t, {
  store: 'embedded',
  upstreamUrl: upstream.url,
  config: { cors: { origins: [allowedOrigin], credentials: true } }
})
const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)
const adminToken = await gw.issueToken(ADMIN.email, 'administrator', ADMIN.token)

// The gateway's certificate is trusted by its key alone: nothing else is exempt from checks.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [`--ignore-certificate-errors-spki-list=${spkiHash(join(dirname(gw.ca), 'server.crt'))}`]
})
t.teardown(() => browser.close())

async function openApp (origin: string): Promise<Page> {
  const page = await browser.newPage()
  await page.goto(`${origin}/`)
  return page
}

function callGateway (page: Page, path: string, init: Record<string, unknown>): Promise<Outcome> {
  return page.evaluate(async ([url, options]) => {
    const call = (globalThis as unknown as { callGateway: (u: string, i: unknown) => Promise<Outcome> }).callGateway
    return await call(url, options)
  }, [gw.url + path, init] as const)
}

const withToken = { credentials: 'include', headers: { Authorization: `Token ${token}` } }

t.test('the listed origin\'s page reads Label Studio\'s data through the gateway', async (t) => {
  upstream.clear()
  const before = gw.logs.accessLines().length
  const page = await openApp(allowedOrigin)
  const outcome = await callGateway(page, '/api/projects/1/', withToken)
  t.equal(outcome.error, undefined, 'the fetch succeeded')
  t.equal(outcome.status, 200)
  t.equal(outcome.body?.id, 1)
  t.equal(outcome.body?.title, 'Blood cell detection')
  t.match(outcome.requestId, /^[0-9a-f-]{36}$/, 'an exposed header is readable')
  t.same(upstream.requests.map((r) => r.method), ['GET'], 'the preflight stayed at the gateway')
  const lines = (await gw.waitForAccessLines(before + 2)).slice(before)
  t.match(lines, [{ method: 'OPTIONS', statusCode: 204, decision: { detail: 'cors-preflight' } }, { method: 'GET', statusCode: 200 }])
})

t.test('the other origin\'s fetch fails in the browser, and Label Studio sees nothing', async (t) => {
  upstream.clear()
  const before = gw.logs.accessLines().length
  const page = await openApp(refusedOrigin)
  const outcome = await callGateway(page, '/api/projects/1/', withToken)
  t.equal(outcome.error, 'TypeError')
  t.equal(outcome.status, undefined)
  t.equal(upstream.requests.length, 0, 'nothing reached Label Studio')
  const lines = (await gw.waitForAccessLines(before + 1)).slice(before)
  t.match(lines, [{ method: 'OPTIONS', statusCode: 403, decision: { reason: 'LG_ERR_CORS_ORIGIN_DENIED' } }])
})

t.test('Label Studio\'s own "any origin" answer does not reach the browser', async (t) => {
  // A request without credentials or custom headers needs no preflight: it reaches Label Studio,
  // which allows every origin; the gateway removes that, so only the listed origin reads the answer.
  upstream.clear()
  const refused = await callGateway(await openApp(refusedOrigin), '/health/', { credentials: 'omit' })
  t.equal(refused.error, 'TypeError')
  const allowed = await callGateway(await openApp(allowedOrigin), '/health/', { credentials: 'omit' })
  t.same(allowed.body, { status: 'UP' })
  t.same(upstream.requests.map((r) => r.headers.origin), [refusedOrigin, allowedOrigin])
})

t.test('uploaded HTML and SVG opened through the gateway run no script', async (t) => {
  const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Token ${adminToken}` } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const ran = async (url: string): Promise<string | null> => {
    const res = await page.goto(url)
    t.equal(res?.status(), 200, url)
    return await page.evaluate('document.documentElement.getAttribute("data-ran")') as string | null
  }
  // Straight from Label Studio (the stand-in, with the admin's Label Studio token), they do run:
  // the check below can see a script that ran.
  await context.setExtraHTTPHeaders({ authorization: `Token ${ADMIN.token}` })
  t.equal(await ran(`${upstream.url}/data/upload/1/page.html`), 'yes', 'served by Label Studio, the script runs')
  t.equal(await ran(`${upstream.url}/data/upload/1/drawing.svg`), 'yes')
  await context.setExtraHTTPHeaders({ authorization: `Token ${adminToken}` })
  t.equal(await ran(`${gw.url}/data/upload/1/page.html`), null, 'through the gateway, it does not')
  t.equal(await page.evaluate('document.title'), 'upload')
  t.equal(await ran(`${gw.url}/data/upload/1/drawing.svg`), null)
  await page.goto(`${gw.url}/data/upload/1/pixel.png`)
  t.equal(await page.evaluate('document.images[0]?.naturalWidth'), 1, 'an image still shows')
})
