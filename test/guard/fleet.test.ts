// the guard's fleet scope end to end: two gateway processes on one real Redis, each seeing too
// little traffic to judge alone; together they judge, roll back once for both, and say so. With
// Redis gone each falls back to its own counts and says that too
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { spawnGateway, type GatewayProcess } from '../helpers/process.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

// 20 req/s a side per replica: at most 8 s x 20 = 160 a side in one replica's judged sample (one to
// two 4 s windows), 200 or more for the two together once the sample is 5 s old
const MIN_REQUESTS = 201
const GUARD = `    guard: { window: 4s, minRequests: ${MIN_REQUESTS}, maxErrorRateDelta: 0.02, confidence: 0.99 }\n`

interface GuardAnswer {
  verdict: string
  scope: string
  backends: { legacy: { requests: number }, new: { requests: number, errors: number } }
  replica: { legacy: number, new: number }
}

async function guardOf (g: GatewayProcess): Promise<GuardAnswer> {
  const r = await call(g.adminUrl, 'GET', '/admin/guard', VIEWER)
  return (r.body.rollouts as Record<string, GuardAnswer>).checkout as GuardAnswer
}

t.test('two replicas judge the fleet\'s traffic together', async (t) => {
  const redis = await startRedis(t)
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = tempDir()
  const prefix = `fleet${process.pid}:`
  const replicas: GatewayProcess[] = []
  for (let i = 0; i < 2; i++) {
    const file = join(dir, `gateway-${i}.yaml`)
    writeFileSync(file, basicYaml(legacy.url, fresh.url, { rollout: GUARD }) +
      `\nserver: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0, tokens: [{ name: oncall, token: "${OPERATOR}", role: operator }, { name: grafana, token: "${VIEWER}", role: viewer }] }\n` +
      `state: { store: redis, file: "${join(dir, `cache-${i}.json`)}", redis: { url: "${redis.url}", prefix: "${prefix}" } }\n`)
    replicas.push(await spawnGateway(file, t))
  }
  const [a, b] = replicas as [GatewayProcess, GatewayProcess]

  // bounded load: 2 requests to each replica every 50 ms, distinct users, for at most 3 minutes
  const agent = new Agent({ connections: 8 })
  let user = 0
  let sent = 0
  const started = Date.now()
  const timer = setInterval(() => {
    if (Date.now() - started > 180_000) return clearInterval(timer)
    for (const g of [a, b]) {
      for (let k = 0; k < 2; k++) {
        sent++
        request(`${g.url}/api/orders`, { headers: { 'x-user-id': `u${user++}` }, dispatcher: agent }).then((r) => r.body.dump()).catch(() => {})
      }
    }
  }, 50)
  t.teardown(async () => { clearInterval(timer); await agent.close() })

  await t.test('healthy on the fleet\'s counts, which neither replica has alone', async (t) => {
    const seen = await waitFor(async () => {
      const [ga, gb] = await Promise.all([guardOf(a), guardOf(b)])
      return ga.verdict === 'healthy' && gb.verdict === 'healthy' ? [ga, gb] : undefined
    }, { what: 'both replicas healthy on fleet scope', timeoutMs: 60_000 })
    for (const g of seen) {
      t.equal(g.scope, 'fleet')
      t.ok(g.backends.new.requests >= MIN_REQUESTS, `fleet: ${g.backends.new.requests} on new`)
      t.ok(g.replica.new < MIN_REQUESTS && g.replica.legacy < MIN_REQUESTS, `this replica alone: ${g.replica.new} on new, ${g.replica.legacy} on legacy`)
      t.ok(g.backends.new.requests > g.replica.new, 'the sum holds the other replica\'s counts')
    }
  })

  await t.test('new failing 20%: one rollback, on both, with the fleet\'s numbers in the audit', async (t) => {
    let n = 0
    fresh.handler = (_req, res) => {
      res.writeHead(n++ % 5 === 0 ? 500 : 200, { 'content-type': 'application/json' })
      res.end('{}')
    }
    const fault = performance.now()
    await waitFor(async () => {
      const [sa, sb] = await Promise.all([a, b].map((g) => call(g.adminUrl, 'GET', '/admin/state', VIEWER)))
      const by = (s: typeof sa) => (s?.body.rollouts as Record<string, { rollback: { by: string } | null }>).checkout?.rollback?.by
      return by(sa) === 'guard' && by(sb) === 'guard'
    }, { what: 'both replicas rolled back by the guard', timeoutMs: 60_000, intervalMs: 10 })
    const took = performance.now() - fault
    t.comment(`fault on new to rollback in force on both replicas: ${took.toFixed(0)} ms (window 4 s, fleet scope)`)
    for (const g of [a, b]) {
      const r = await request(`${g.url}/api/orders`, { headers: { 'x-user-id': 'someone' } })
      await r.body.dump()
      t.equal(r.headers['x-dualtrack-reason'], 'rollback', 'the replica routes by it')
    }
    const entries = (await call(a.adminUrl, 'GET', '/admin/audit?limit=100', VIEWER)).body.entries as { actor: string, action: string, after: Record<string, unknown>, reason: string }[]
    const rollbacks = entries.filter((e) => e.action === 'rollback')
    t.equal(rollbacks.length, 1, 'one rollback for the fleet, not one per replica')
    const after = rollbacks[0]?.after ?? {}
    t.match(rollbacks[0], { actor: 'guard', after: { mode: 'drain', scope: 'fleet', sample: 'window' }, reason: /^guard: new error rate .* \(fleet window since / })
    t.ok((after.newRequests as number) >= MIN_REQUESTS, `the fleet's ${String(after.newRequests)} requests on new`)
    t.ok((after.errorRateLower as number) > 0.02 && (after.errorRatePValue as number) <= 0.01, 'the bound and the p-value that tripped it')
    fresh.handler = undefined
  })

  await t.test('Redis down: each replica judges its own counts and says so', async (t) => {
    await call(a.adminUrl, 'POST', '/admin/resume', OPERATOR, {})
    await waitFor(async () => ((await call(b.adminUrl, 'GET', '/admin/state', VIEWER)).body.rollouts as Record<string, { rollback: unknown }>).checkout?.rollback === null, { what: 'the resume on both' })
    await redis.stop()
    const g = await waitFor(async () => { const x = await guardOf(a); return x.scope === 'replica (store down)' ? x : undefined }, { what: 'scope: replica (store down)', timeoutMs: 30_000 })
    t.equal(g.backends.new.requests, g.replica.new, 'the counts judged are this replica\'s own')
    t.equal((await call(a.adminUrl, 'GET', '/metrics')).status, 200)
  })
  t.ok(sent > 0)
})
