/* global performance */
// what a peer lookup (state.peers) costs on a busy machine, to size state.peers.timeoutMs (issue 10).
// Two replicas A and B (real `dualtrack start` processes) share a real redis-server; orders are
// created through B, so B holds their owners in memory. Then, at each load level (BENCH_PEER_LOADS:
// that many clients sending order -> payment pairs through A and B without pause), for a fixed time:
//   - the gateway's own peer client, in this process (whose event loop drives the load too), asks B
//     for known orders one after another, with a 10 s bound: the real distribution of an ask;
//   - for each timeout of BENCH_PEER_TIMEOUTS, a replica C_<timeout> whose Redis is down (its url
//     points at a closed port) takes payments for B's orders one after another: each is a lookup
//     that fails on the store and asks B. Its own counters say how many asks ended in peer_hit and
//     how many in peer_timeout (a payment that would have been routed by cohort: a possible split).
// Settings: BENCH_PEER_LOADS (0,16,64)  BENCH_PEER_TIMEOUTS (50,250,1000)  BENCH_PEER_SECONDS (20 a level)
//   BENCH_PEER_WRITE (1: write bench/results/<day>-peer-lookup.json). Needs `npm run build` and redis-server.
import http from 'node:http'
import { connect } from 'node:net'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir, loadavg } from 'node:os'
import { join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Agent, request } from 'undici'
import { stringify } from 'yaml'
import { ROOT_DIR } from './lib/settings.js'
import { freePort, randomHighPort } from './lib/ports.js'
import { startProcess, which, killAll } from './lib/proc.js'
import { machine, commandLine, writeResults } from './lib/report.js'

const env = process.env
const LOADS = (env.BENCH_PEER_LOADS ?? '0,16,64').split(',').map(Number)
const TIMEOUTS = (env.BENCH_PEER_TIMEOUTS ?? '50,250,1000').split(',').map(Number)
const SECONDS = Number(env.BENCH_PEER_SECONDS ?? 20)
const WRITE = env.BENCH_PEER_WRITE === '1'
const TOKEN = 'peer-bench-operator-token-0123456789'
const CLI = join(ROOT_DIR, 'bin', 'dualtrack.js')
const log = (msg) => process.stderr.write(`[peer-lookup] ${msg}\n`)

// a sample system: an order gets an id, anything else 200
function startSystem (prefix) {
  let seq = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const text = req.method === 'POST' && req.url === '/api/orders' ? JSON.stringify({ orderId: `${prefix}-${++seq}-${Date.now().toString(36)}` }) : '{}'
      res.writeHead(req.url === '/api/orders' ? 201 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  return once(server, 'listening').then(() => ({ port: server.address().port, close: () => { server.closeAllConnections(); server.close() } }))
}

function config ({ port, admin, legacy, fresh, redisPort, tmp, name, peers, timeoutMs }) {
  return {
    server: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: admin, tokens: [{ name: 'sre', token: TOKEN, role: 'operator' }] },
    backends: { legacy: { url: `http://127.0.0.1:${legacy}`, timeoutMs: 10_000 }, new: { url: `http://127.0.0.1:${fresh}`, timeoutMs: 10_000 } },
    state: {
      store: 'redis',
      file: join(tmp, `${name}-state.json`),
      redis: { url: `redis://127.0.0.1:${redisPort}`, prefix: 'peerbench:' },
      peers: { urls: peers.map((p) => `http://127.0.0.1:${p}`), token: TOKEN, timeoutMs }
    },
    rollouts: {
      checkout: {
        percent: 50,
        salt: 'peer-bench',
        cohortKey: ['header:x-user-id'],
        affinity: { learn: ['json:$.orderId'], lookup: ['json:$.orderId'], ttl: '1d' }
      }
    },
    routes: [{ name: 'all', match: { prefix: '/api' }, rollout: 'checkout' }],
    default: 'legacy'
  }
}

async function startGateway (name, cfg, tmp) {
  const file = join(tmp, `${name}.yaml`)
  writeFileSync(file, stringify(cfg))
  const p = startProcess({ name, cmd: process.execPath, args: [CLI, 'start', '--config', file], cwd: ROOT_DIR, env: { ...env, LOG_LEVEL: 'error' }, stdout: join(tmp, `${name}.log`) })
  const deadline = Date.now() + 60_000
  for (;;) {
    if (!p.running) throw new Error(`${name} exited before it listened: ${p.stderr.slice(-2000)}`)
    try {
      const r = await request(`http://127.0.0.1:${cfg.admin.port}/healthz`, { headersTimeout: 1000 })
      await r.body.dump()
      if (r.statusCode === 200) return p
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${name} did not start`)
    await sleep(50)
  }
}

function accepts (port) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

function pct (xs, p) {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 100) / 100
}
const dist = (xs) => ({ n: xs.length, p50Ms: pct(xs, 0.5), p90Ms: pct(xs, 0.9), p99Ms: pct(xs, 0.99), p999Ms: pct(xs, 0.999), maxMs: pct(xs, 1) })

// the asked replica's event loop delay (prom-client's default metrics; reset at each scrape, so a
// scrape at the start of a level and one at its end cover that level)
async function loopLag (adminPort) {
  const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: 30_000, bodyTimeout: 30_000 })
  const text = await r.body.text()
  const get = (name) => Math.round(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 100_000) / 100
  return { p50Ms: get('nodejs_eventloop_lag_p50_seconds'), p99Ms: get('nodejs_eventloop_lag_p99_seconds'), maxMs: get('nodejs_eventloop_lag_max_seconds') }
}

async function counters (adminPort) {
  const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` }, headersTimeout: 30_000, bodyTimeout: 30_000 })
  const text = await r.body.text()
  const get = (result) => Number(new RegExp(`dualtrack_affinity_total\\{rollout="checkout",op="lookup",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
  return { peer_hit: get('peer_hit'), peer_miss: get('peer_miss'), peer_timeout: get('peer_timeout'), error: get('error') }
}

async function main () {
  if (!which('redis-server')) throw new Error('redis-server is required')
  const tmp = mkdtempSync(join(tmpdir(), 'dualtrack-peer-bench-'))
  log(`logs: ${tmp}`)
  const legacy = await startSystem('LG')
  const fresh = await startSystem('NW')
  const redisPort = await randomHighPort()
  const redis = startProcess({ name: 'redis', cmd: 'redis-server', args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'] })
  for (let i = 0; !(await accepts(redisPort)); i++) {
    if (i > 200 || !redis.running) throw new Error(`redis-server did not start: ${redis.stderr}`)
    await sleep(50)
  }
  const deadRedis = await freePort()
  const port = async () => ({ gw: await freePort(), admin: await freePort() })
  const ports = { a: await port(), b: await port() }
  const cs = []
  for (const timeoutMs of TIMEOUTS) cs.push({ timeoutMs, ...(await port()) })
  const base = { legacy: legacy.port, fresh: fresh.port, tmp }
  await startGateway('a', config({ ...base, name: 'a', port: ports.a.gw, admin: ports.a.admin, redisPort, peers: [ports.b.admin], timeoutMs: 1000 }), tmp)
  await startGateway('b', config({ ...base, name: 'b', port: ports.b.gw, admin: ports.b.admin, redisPort, peers: [ports.a.admin], timeoutMs: 1000 }), tmp)
  for (const c of cs) await startGateway(`c${c.timeoutMs}`, config({ ...base, name: `c${c.timeoutMs}`, port: c.gw, admin: c.admin, redisPort: deadRedis, peers: [ports.b.admin], timeoutMs: c.timeoutMs }), tmp)

  const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 })
  const post = async (gw, path, body, user) => {
    const r = await request(`http://127.0.0.1:${gw}${path}`, { method: 'POST', dispatcher: agent, body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-user-id': user }, headersTimeout: 30_000, bodyTimeout: 30_000 })
    const text = await r.body.text()
    return { status: r.statusCode, json: text ? JSON.parse(text) : {} }
  }
  // orders B created: B holds their owners in memory, A and the C replicas never saw them
  const perLevel = Math.ceil(SECONDS * 200)
  const known = []
  log(`creating ${perLevel * LOADS.length + 200} orders through B`)
  for (let i = 0; known.length < perLevel * LOADS.length + 200; i++) {
    const batch = await Promise.all(Array.from({ length: 32 }, (_, k) => post(ports.b.gw, '/api/orders', {}, `u${i}-${k}`)))
    for (const o of batch) if (o.json.orderId) known.push(o.json.orderId)
  }

  const { createPeers } = await import(join(ROOT_DIR, 'dist', 'state', 'peers.js'))
  const { default: pino } = await import('pino')
  const results = []
  for (const [li, load] of LOADS.entries()) {
    log(`load ${load}: ${SECONDS} s`)
    let stop = false
    const reqMs = []
    let reqErrors = 0
    const workers = Array.from({ length: load }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const [first, second] = (w + i) % 2 === 0 ? [ports.a.gw, ports.b.gw] : [ports.b.gw, ports.a.gw]
        const s = performance.now()
        try {
          const o = await post(first, '/api/orders', {}, `w${w}-${i}`)
          reqMs.push(performance.now() - s)
          const s2 = performance.now()
          await post(second, '/api/payments', { orderId: o.json.orderId }, `w${w}-${i}`)
          reqMs.push(performance.now() - s2)
        } catch { reqErrors++ }
      }
    })
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    const before = await Promise.all(cs.map((c) => counters(c.admin)))
    await loopLag(ports.b.admin)
    const ids = known.slice(li * perLevel, (li + 1) * perLevel)
    const until = Date.now() + SECONDS * 1000
    // the gateway's own peer client asking B, unbounded in practice (10 s): the real cost
    const client = createPeers({ urls: [`http://127.0.0.1:${ports.b.admin}`], token: TOKEN, timeoutMs: 10_000 }, 0, pino({ level: 'silent' }))
    const askMs = []
    let unanswered = 0
    const asker = (async () => {
      for (let i = 0; Date.now() < until; i++) {
        const s = performance.now()
        const got = await client.ask('checkout', known[i % 200])
        askMs.push(performance.now() - s)
        if (got?.owner === undefined) unanswered++
      }
    })()
    // each C replica: payments for B's orders, one after another; its store is down, so each asks B
    const sent = cs.map(() => 0)
    const payers = cs.map(async (c, ci) => {
      for (let i = ci; Date.now() < until && i < ids.length; i += 1) {
        await post(c.gw, '/api/payments', { orderId: ids[i] }, `pay-${i}`).catch(() => {})
        sent[ci]++
      }
    })
    await Promise.all([asker, ...payers])
    stop = true
    await Promise.all(workers)
    lag.disable()
    await client.close()
    const after = await Promise.all(cs.map((c) => counters(c.admin)))
    const askedLag = await loopLag(ports.b.admin)
    const level = {
      load,
      loadavg: loadavg().map((v) => Math.round(v * 10) / 10),
      requests: { ...dist(reqMs), errors: reqErrors },
      benchEventLoopDelay: { p50Ms: Math.round(lag.percentile(50) / 1e4) / 100, p99Ms: Math.round(lag.percentile(99) / 1e4) / 100, maxMs: Math.round(lag.max / 1e4) / 100 },
      ask: { ...dist(askMs), unanswered },
      askedReplicaEventLoopDelay: askedLag,
      replicasWithRedisDown: cs.map((c, ci) => {
        const d = Object.fromEntries(Object.keys(after[ci]).map((k) => [k, after[ci][k] - before[ci][k]]))
        return { timeoutMs: c.timeoutMs, payments: sent[ci], ...d, timeoutShare: d.peer_hit + d.peer_timeout > 0 ? Math.round(d.peer_timeout / (d.peer_hit + d.peer_timeout) * 10_000) / 10_000 : null }
      })
    }
    results.push(level)
    log(`load ${load}: requests p50 ${level.requests.p50Ms} p99 ${level.requests.p99Ms} ms; ask p50 ${level.ask.p50Ms} p99 ${level.ask.p99Ms} p99.9 ${level.ask.p999Ms} max ${level.ask.maxMs} ms (${level.ask.n}); B loop lag p99 ${askedLag.p99Ms} max ${askedLag.maxMs} ms; ` +
      level.replicasWithRedisDown.map((c) => `timeout ${c.timeoutMs}: ${c.peer_timeout}/${c.peer_hit + c.peer_timeout} timed out`).join(', '))
  }
  const report = {
    bench: 'peer-lookup',
    at: new Date().toISOString(),
    ...commandLine(),
    machine: machine({ redis: 'redis-server' }),
    settings: { loads: LOADS, timeouts: TIMEOUTS, secondsPerLevel: SECONDS },
    levels: results
  }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  if (WRITE) log(`written ${relative(ROOT_DIR, await writeResults(join(ROOT_DIR, 'bench', 'results'), '-peer-lookup', report))}`)
  await agent.close()
  legacy.close()
  fresh.close()
  await redis.stop()
}

main().then(() => killAll('SIGTERM')).catch((err) => {
  log(err.stack ?? String(err))
  killAll('SIGKILL')
  process.exitCode = 1
})
