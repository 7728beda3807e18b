// three gateway processes on one real Redis: rollbacks propagate to every replica, survive Redis
// being down, and Redis going away never fails a proxied request. Propagation times are printed
// (tap comments), not asserted: latency targets belong in bench/
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { basicYaml, tempDir } from '../helpers/gateway.js'
import { startRedis } from '../helpers/redis.js'
import { spawnGateway, type GatewayProcess } from '../helpers/process.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

async function reasonOf (g: GatewayProcess): Promise<string> {
  const r = await request(g.url + '/api/orders', { headers: { 'x-user-id': 'qa-user-1' } })
  await r.body.dump()
  return String(r.headers['x-dualtrack-reason'])
}

/** wait until the replica routes by `reason`; resolves with how long that took (ms) */
async function routesBy (g: GatewayProcess, reason: string, what: string): Promise<number> {
  const started = performance.now()
  await waitFor(async () => (await reasonOf(g)) === reason, { what: `${what} (reason ${reason})`, intervalMs: 5 })
  return performance.now() - started
}

async function storeUp (g: GatewayProcess): Promise<boolean> {
  return (await call(g.adminUrl, 'GET', '/readyz')).body.storeUp === true
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

  await t.test('a rollback on one replica is seen by the others', async (t) => {
    const times: number[] = []
    for (let i = 0; i < 20; i++) {
      // from the moment the rollback is sent to the moment the last other replica routes by it
      const sent = performance.now()
      const rb = call(a.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: `try ${i}`, rollout: 'checkout' })
      await Promise.all([b, c].map((g, j) => routesBy(g, 'rollback', `try ${i}: replica ${j + 1} to route by the rollback`)))
      const last = performance.now() - sent
      t.equal((await rb).status, 200)
      t.equal(await reasonOf(a), 'rollback')
      times.push(last)
      t.equal((await call(a.adminUrl, 'POST', '/admin/resume', OPERATOR, {})).status, 200)
      await Promise.all([b, c].map((g, j) => routesBy(g, 'force', `try ${i}: replica ${j + 1} to route by force again after the resume`)))
    }
    t.pass('every rollback reached both other replicas, and every resume too')
    times.sort((x, y) => x - y)
    const median = ((times[9] as number) + (times[10] as number)) / 2
    const max = times[19] as number
    // informative: DESIGN.md's "within a second" target is measured in bench/, not asserted here
    t.comment(`rollback propagation over 20 tries: median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms`)
  })

  await t.test('Redis down: local at once, not yet propagated, the others catch up when it is back', async (t) => {
    await redis.stop()
    await waitFor(async () => !(await storeUp(a)), { what: 'replica 0 to see Redis down' })
    const rb = await call(a.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'redis is down too', rollout: 'checkout' })
    t.equal(rb.status, 200)
    t.equal(rb.body.propagated, false)
    t.match(rb.body, { rollouts: { checkout: { rollback: { mode: 'hard', propagated: false } } } })
    t.equal(await reasonOf(a), 'rollback', 'in force here at once')
    t.equal(await reasonOf(b), 'force', 'not yet elsewhere')
    t.equal((await call(a.adminUrl, 'GET', '/readyz')).status, 200, 'still ready: serving the last known state')
    await redis.start()
    const seen = await Promise.all([b, c].map((g, j) => routesBy(g, 'rollback', `replica ${j + 1} to catch up once Redis is back`)))
    t.pass('the others caught up once Redis was back')
    t.comment(`caught up ${seen.map((s) => s.toFixed(0)).join(', ')} ms after Redis came back`)
    const st = await call(a.adminUrl, 'GET', '/admin/state', VIEWER)
    t.match(st.body, { rollouts: { checkout: { rollback: { propagated: true } } }, store: { store: 'redis', up: true, pending: 0 } })
    await call(a.adminUrl, 'POST', '/admin/resume', OPERATOR, {})
    await Promise.all([b, c].map((g, j) => routesBy(g, 'force', `replica ${j + 1} to see the resume`)))
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
    // phases end on what the replicas report, not on a clock: traffic before, while every
    // replica sees Redis down, and after every replica has it back
    const more = async (n: number, what: string) => { const from = sent; await waitFor(() => sent >= from + n, { what: `${n} more requests ${what}` }) }
    try {
      await more(50, 'before Redis goes')
      await redis.stop()
      await waitFor(async () => (await Promise.all(replicas.map(storeUp))).every((up) => !up), { what: 'every replica to see Redis down' })
      const whileDown = sent
      await more(50, 'while Redis is down')
      await redis.start()
      await waitFor(async () => (await Promise.all(replicas.map(storeUp))).every((up) => up), { what: 'every replica to have Redis back' })
      t.comment(`${sent - whileDown} requests while Redis was down`)
      await more(50, 'after Redis is back')
    } finally {
      stop = true
      await load
    }
    t.ok(sent > 150, `${sent} requests sent`)
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
