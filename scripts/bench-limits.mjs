// What rate limits cost a request. The gateway runs as `labelgate serve` in a process of its own,
// on the Redis identity store (a real redis-server with TLS, client certificates and an ACL user),
// in front of the Label Studio stand-in; this process only sends requests. Rate limits off, then
// on (counted in Redis), for:
//   - a token the gateway holds in memory, GET /api/projects/1/: its address is checked and its
//     user counted, two Lua calls in Redis;
//   - an anonymous client, GET /health/: its address is counted, one call;
//   - the same anonymous client with Redis stopped: counted in the gateway's memory.
// 20 requests in flight; a warm-up round, then 5 rounds of 3,000 requests, alternating between the
// gateway without limits and the one with them; prints each one's median round.
//
//   npm run bench:limits
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { stringify } from 'yaml'
import { freePort, startRedis } from '../test/support/redis.js'
import { CLI, runCli } from '../test/support/gateway.js'
import { DEFAULT_STANDIN_USERS, startLabelStudioStandIn } from '../test/support/labelstudio-standin.js'
import { makeCertificates, REPO_ROOT, tempDir } from '../test/support/tmp.js'

const REQUESTS = 3000
const IN_FLIGHT = 20
const ROUNDS = 5
const LOOSE = { max: 1e9, anonymous_max: 1e9, auth_endpoints_max: 1e9 }

const teardowns = []
const t = { teardown: (fn) => teardowns.push(fn) }
const annotator = DEFAULT_STANDIN_USERS[1]

async function round (url, agent, path, headers) {
  const times = []
  const statuses = new Map()
  let next = 0
  const started = performance.now()
  async function worker () {
    while (next < REQUESTS) {
      next++
      const start = performance.now()
      const res = await request(url + path, { headers, dispatcher: agent })
      await res.body.dump()
      times.push(performance.now() - start)
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  const seconds = (performance.now() - started) / 1000
  times.sort((a, b) => a - b)
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))]
  return { rps: REQUESTS / seconds, p50: at(0.5), p99: at(0.99), statuses: Object.fromEntries(statuses) }
}

/** Rounds alternate between the gateways, so that drift in the machine's speed hits each alike. */
async function compare (label, gateways, path, headers = {}) {
  const agents = gateways.map((gw) => new Agent({ connect: { ca: readFileSync(gw.ca) }, connections: IN_FLIGHT }))
  const rounds = gateways.map(() => [])
  for (let i = 0; i <= ROUNDS; i++) {
    for (const [g, gw] of gateways.entries()) {
      const result = await round(gw.url, agents[g], path, headers)
      if (i > 0) rounds[g].push(result)
    }
  }
  await Promise.all(agents.map((a) => a.close()))
  for (const [g, gw] of gateways.entries()) {
    const sorted = rounds[g].sort((a, b) => a.rps - b.rps)
    const m = sorted[Math.floor(sorted.length / 2)]
    const line = `${m.rps.toFixed(0).padStart(6)} req/s  p50 ${m.p50.toFixed(1)} ms  p99 ${m.p99.toFixed(1)} ms`
    console.log(`${(label + ', limits ' + gw.label).padEnd(48)} ${line}  ${JSON.stringify(m.statuses)}`)
  }
}

/** `labelgate serve` in a child process, configured like the test gateways. */
async function serve (label, redis, upstreamUrl, rateLimits) {
  const dir = tempDir(t, 'labelgate-bench-')
  const certs = makeCertificates(join(dir, 'certs'))
  const port = await freePort()
  const env = { ...process.env, LG_BENCH_REDIS_PASSWORD: redis.password }
  const configFile = join(dir, 'gateway.yaml')
  writeFileSync(configFile, stringify({
    server: { host: '127.0.0.1', port },
    tls: { cert: certs.cert, key: certs.key },
    upstream: { url: upstreamUrl },
    identity: {
      redis: {
        url: redis.url,
        username: redis.username,
        password: { env: 'LG_BENCH_REDIS_PASSWORD' },
        tls: { ca: redis.ca, cert: redis.cert, key: redis.key },
        key_prefix: redis.keyPrefix
      }
    },
    policies: { dir: join(REPO_ROOT, 'policies') },
    rate_limits: rateLimits,
    log: { level: 'warn' }
  }))
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], { env, stdio: 'ignore' })
  const stopped = new Promise((resolve) => child.once('exit', resolve))
  const stop = async () => { child.kill('SIGTERM'); await stopped }
  t.teardown(stop)
  const url = `https://127.0.0.1:${port}`
  const agent = new Agent({ connect: { ca: readFileSync(certs.ca) } })
  for (let i = 0; i < 200; i++) {
    try {
      await (await request(url + '/-/healthz', { dispatcher: agent })).body.dump()
      break
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  await agent.close()
  const cli = (args, stdin) => runCli([...args, '--config', configFile], env, stdin)
  return { label, url, ca: certs.ca, cli, stop }
}

try {
  const upstream = await startLabelStudioStandIn()
  teardowns.push(() => upstream.close())
  const redis = await startRedis(t)
  const off = await serve('off', redis, upstream.url, { enabled: false })
  const on = await serve('on', redis, upstream.url, LOOSE)
  const registered = await on.cli(['token', 'register', '--user', annotator.email], annotator.token)
  if (registered.code !== 0) throw new Error(registered.stderr)
  await on.cli(['user', 'set', annotator.email, '--role', 'annotator', '--projects', 'all'])
  await compare('token, GET /api/projects/1/', [off, on], '/api/projects/1/', { authorization: `Token ${annotator.token}` })
  await compare('anonymous, GET /health/', [off, on], '/health/')
  await redis.stop()
  await compare('Redis stopped, anonymous, GET /health/', [on], '/health/')
  console.log(`${REQUESTS} requests a round, ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds; node ${process.version}`)
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
