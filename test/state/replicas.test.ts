// three gateway processes on one real Redis: rollbacks propagate within a second, survive Redis
// being down, and Redis going away never fails a proxied request
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { spawnGateway, type GatewayProcess } from '../helpers/process.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'

async function reasonOf (g: GatewayProcess): Promise<string> {
  const r = await request(g.url + '/api/orders', { headers: { 'x-user-id': 'qa-user-1' } })
  await r.body.dump()
  return String(r.headers['x-dualtrack-reason'])
}

async function until (what: () => Promise<boolean>, ms: number): Promise<number> {
  const started = performance.now()
  while (!(await what())) {
    if (performance.now() - started > ms) return -1
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return performance.now() - started
}

t.test('replicas on one Redis', async (t) => {
  const redis = await startRedis(t)
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = tempDir()
  const replicas: GatewayProcess[] = []
  const prefix = `dt${process.pid}:`
  for (let i = 0; i < 3; i++) {
    const file = join(dir, `gateway-${i}.yaml`)
    writeFileSync(file, basicYaml(legacy.url, fresh.url) +
      `\nserver: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0, tokens: [{ name: oncall, token: "${OPERATOR}", role: operator }, { name: grafana, token: "${VIEWER}", role: viewer }] }\n` +
      `state: { store: redis, file: "${join(dir, `cache-${i}.json`)}", redis: { url: "${redis.url}", prefix: "${prefix}" } }\n`)
    replicas.push(await spawnGateway(file, t))
  }
  const [a, b, c] = replicas as [GatewayProcess, GatewayProcess, GatewayProcess]

  await t.test('a rollback on one replica is seen by the others within 1 s', async (t) => {
    const times: number[] = []
    for (let i = 0; i < 20; i++) {
      // from the moment the rollback is sent to the moment the last other replica routes by it
      const sent = performance.now()
      const rb = call(a.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: `try ${i}`, rollout: 'checkout' })
      const seen = await Promise.all([b, c].map((g) => until(async () => (await reasonOf(g)) === 'rollback', 3000)))
      const last = performance.now() - sent
      t.equal((await rb).status, 200)
      t.equal(await reasonOf(a), 'rollback')
      for (const s of seen) t.ok(s >= 0, 'seen')
      times.push(last)
      await call(a.adminUrl, 'POST', '/admin/resume', OPERATOR, {})
      await Promise.all([b, c].map((g) => until(async () => (await reasonOf(g)) === 'force', 3000)))
    }
    times.sort((x, y) => x - y)
    const median = ((times[9] as number) + (times[10] as number)) / 2
    const max = times[19] as number
    t.comment(`rollback propagation over 20 tries: median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms`)
    t.ok(max < 1000, `every try within 1 s (max ${max.toFixed(1)} ms)`)
  })

  await t.test('Redis down: local at once, not yet propagated, the others catch up when it is back', async (t) => {
    await redis.stop()
    await until(async () => ((await call(a.adminUrl, 'GET', '/readyz')).body.storeUp === false), 5000)
    const rb = await call(a.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'redis is down too', rollout: 'checkout' })
    t.equal(rb.status, 200)
    t.equal(rb.body.propagated, false)
    t.match(rb.body, { rollouts: { checkout: { rollback: { mode: 'hard', propagated: false } } } })
    t.equal(await reasonOf(a), 'rollback', 'in force here at once')
    t.equal(await reasonOf(b), 'force', 'not yet elsewhere')
    t.equal((await call(a.adminUrl, 'GET', '/readyz')).status, 200, 'still ready: serving the last known state')
    await redis.start()
    const seen = await Promise.all([b, c].map((g) => until(async () => (await reasonOf(g)) === 'rollback', 8000)))
    t.ok(seen.every((s) => s >= 0), `the others caught up ${seen.map((s) => s.toFixed(0)).join(', ')} ms after Redis came back`)
    const st = await call(a.adminUrl, 'GET', '/admin/state', VIEWER)
    t.match(st.body, { rollouts: { checkout: { rollback: { propagated: true } } }, store: { store: 'redis', up: true, pending: 0 } })
    await call(a.adminUrl, 'POST', '/admin/resume', OPERATOR, {})
    await Promise.all([b, c].map((g) => until(async () => (await reasonOf(g)) === 'force', 3000)))
  })

  await t.test('Redis killed during traffic fails no proxied request', async (t) => {
    let failed = 0
    let sent = 0
    let stop = false
    const load = Promise.all(replicas.map(async (g) => {
      while (!stop) {
        sent++
        try {
          const r = await request(g.url + '/api/orders', { headers: { 'x-user-id': `u${sent}` } })
          await r.body.dump()
          if (r.statusCode !== 200) failed++
        } catch { failed++ }
      }
    }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    await redis.stop()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await redis.start()
    await new Promise((resolve) => setTimeout(resolve, 300))
    stop = true
    await load
    t.ok(sent > 100, `${sent} requests sent`)
    t.equal(failed, 0, 'none failed')
  })

  await t.test('an admin change survives a gateway restart on the Redis store', async (t) => {
    t.equal((await call(b.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 33 })).status, 200)
    const code = await a.stop()
    t.equal(code, 0, 'SIGTERM exits cleanly')
    const file = join(dir, 'gateway-0.yaml')
    const again = await spawnGateway(file, t)
    const st = await call(again.adminUrl, 'GET', '/admin/state', VIEWER)
    t.match(st.body, { rollouts: { checkout: { percent: 33, updatedBy: 'oncall', source: 'admin' } } })
    await again.stop()
  })

  for (const g of replicas) await g.stop()
})
