// server.workers: 2 worker processes behind one port, sharing the file store through the primary
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { startDemoBackend } from '../../src/demo/index.js'
import { tempDir } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/process.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'

t.test('two workers share one port, one state and one affinity store', async (t) => {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  t.teardown(() => legacy.close())
  t.teardown(() => fresh.close())
  const dir = tempDir()
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `
server: { host: 127.0.0.1, port: 0, workers: 2 }
admin: { host: 127.0.0.1, port: 0, tokens: [{ name: oncall, token: "${OPERATOR}", role: operator }, { name: grafana, token: "${VIEWER}", role: viewer }] }
backends:
  legacy: { url: "${legacy.url}" }
  new: { url: "${fresh.url}" }
state: { store: file, file: "${join(dir, 'state.json')}" }
rollouts:
  checkout:
    percent: 100
    cohortKey: [header:x-user-id]
    affinity: { learn: [json:$.orderId], lookup: [json:$.orderId, path:/api/orders/:orderId], ttl: 1h }
routes:
  - { name: orders, match: { prefix: /api/orders }, rollout: checkout }
  - { name: payments, match: { prefix: /api/payments }, rollout: checkout }
`)
  const g = await spawnGateway(file, t)
  // wait for the second worker too
  const deadline = Date.now() + 10_000
  while (!/"worker":1/.test(g.output()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(g.output(), /"msg":"dualtrack primary started"/)
  t.match(g.output(), /"worker":1/, 'the second worker started')

  // every request in a fresh connection lands on either worker (the primary deals them round robin)
  const pids = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const a = new Agent({ connections: 1 })
    const r = await request(g.url + '/api/orders/none', { headers: { 'x-user-id': `u${i}` }, dispatcher: a })
    await r.body.dump()
    await a.close()
    t.equal(r.headers['x-dualtrack-backend'], 'new')
  }
  // access lines are flushed at least every second
  for (let i = 0; i < 30 && pids.size < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    for (const m of g.output().matchAll(/"pid":(\d+)[^\n]*"msg":"request"/g)) pids.add(m[1] as string)
  }
  t.equal(pids.size, 2, 'both workers served requests')

  // a rollback taken by the admin worker is in force in both within 100 ms
  const rb = await call(g.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'cluster test' })
  t.equal(rb.status, 200)
  await new Promise((resolve) => setTimeout(resolve, 100))
  let notYet = 0
  for (let i = 0; i < 20; i++) {
    const a = new Agent({ connections: 1 })
    const r = await request(g.url + '/api/orders/none', { headers: { 'x-user-id': `u${i}` }, dispatcher: a })
    await r.body.dump()
    await a.close()
    if (r.headers['x-dualtrack-reason'] !== 'rollback') notYet++
  }
  t.equal(notYet, 0, 'every worker routes by the rollback 100 ms after it was taken')
  await call(g.adminUrl, 'POST', '/admin/resume', OPERATOR, {})
  await new Promise((resolve) => setTimeout(resolve, 100))

  // an order created through one worker is found by the other
  for (let i = 0; i < 6; i++) {
    await call(g.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 100 })
    const a = new Agent({ connections: 1 })
    const o = await request(g.url + '/api/orders', { method: 'POST', headers: { 'x-user-id': `buyer${i}`, 'content-type': 'application/json' }, body: '{}', dispatcher: a })
    const order = await o.body.json() as { orderId: string }
    await a.close()
    t.equal(o.headers['x-dualtrack-backend'], 'new')
    // the cohort now says legacy: only affinity can send the payment to new
    await call(g.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 0 })
    const b = new Agent({ connections: 1 })
    const p = await request(g.url + '/api/payments', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderId: order.orderId }), dispatcher: b })
    await p.body.dump()
    await b.close()
    t.same([p.headers['x-dualtrack-backend'], p.headers['x-dualtrack-reason'], p.statusCode], ['new', 'affinity', 200])
  }

  // /metrics answers for both workers
  const text = await (await request(g.adminUrl + '/metrics')).body.text()
  const total = [...text.matchAll(/^dualtrack_requests_total\{[^}]*\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0)
  t.equal(total, 20 + 20 + 12, 'requests of both workers are counted')
  t.match(text, /dualtrack_rollout_percent\{rollout="checkout"\} 0\n/, 'gauges are not summed across workers')

  const code = await g.stop()
  t.equal(code, 0, 'SIGTERM drains the workers and the primary exits cleanly')
})
