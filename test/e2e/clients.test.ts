import { spawn } from 'node:child_process'
import t from 'tap'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn, type StandInUser } from '../support/labelstudio-standin.js'
import { startTestGateway } from '../support/gateway.js'

// A real Python HTTP client (Debian's python3-requests) sending what the Label Studio SDK sends:
// Authorization: Token, its User-Agent, and its paginated list URL.

const [, ANNOTATOR] = DEFAULT_STANDIN_USERS as [StandInUser, StandInUser]
const SDK_AGENT = 'label_studio_sdk/2.0.13'

const SCRIPT = `
import json, sys, requests
base, token, ca, agent = sys.argv[1:5]
r = requests.get(base + "/api/projects/", params={"page": 1, "page_size": 10},
                 headers={"Authorization": "Token " + token, "User-Agent": agent}, verify=ca, timeout=10)
print(json.dumps({"status": r.status_code, "body": r.json()}))
`

function python (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['-c', SCRIPT, ...args])
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

t.test('the Label Studio SDK\'s requests work through the gateway', async (t) => {
  const upstream = await startLabelStudioStandIn()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { store: 'embedded', upstreamUrl: upstream.url })
  const token = await gw.issueToken(ANNOTATOR.email, 'annotator', ANNOTATOR.token)
  upstream.clear()
  const run = await python([gw.url, token, gw.ca, SDK_AGENT])
  t.equal(run.code, 0, run.stderr)
  const answer = JSON.parse(run.stdout) as { status: number, body: { count: number, results: Array<{ id: number }> } }
  t.equal(answer.status, 200)
  t.equal(answer.body.count, 2, 'the stand-in\'s two projects')
  t.same(answer.body.results.map((p) => p.id).sort(), [1, 2])
  const seen = upstream.requests[0]
  t.equal(seen?.url, '/api/projects/?page=1&page_size=10')
  t.equal(seen?.headers['user-agent'], SDK_AGENT, 'the client\'s User-Agent is kept')
  t.equal(seen?.headers.authorization, `Token ${ANNOTATOR.token}`)
})
