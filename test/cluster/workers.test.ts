// server.workers: 2 worker processes behind one port, sharing the file store through the primary
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, Agent } from 'undici'
import { startDemoBackend } from '../../src/demo/index.js'
import { tempDir } from '../helpers/gateway.js'
import { spawnGateway } from '../helpers/process.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'

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
  await waitFor(() => /"worker":1/.test(g.output()), { timeoutMs: 40_000, what: 'the second worker to start' })
  t.match(g.output(), /"worker":1/, 'the second worker started')
  // each process buffers its log lines (src/log-destination.ts): the primary's line, written first,
  // can reach the pipe after the workers' (seen on Node 24)
  await waitFor(() => /"msg":"dualtrack primary started"/.test(g.output()), { what: 'the primary\'s start line' })

  // every proxied request is counted here: /metrics must add up to the same number
  let proxied = 0
  // a GET on a fresh connection: the primary deals connections to the workers round robin
  const freshGet = async (user: string) => {
    const a = new Agent({ connections: 1 })
    try {
      const r = await request(g.url + '/api/orders/none', { headers: { 'x-user-id': user }, dispatcher: a })
      await r.body.dump()
      proxied++
      return r.headers
    } finally {
      await a.close()
    }
  }
  /** 20 requests on 20 fresh connections (so both workers answer): their x-dualtrack-reason headers */
  const reasons = async () => { const out: unknown[] = []; for (let i = 0; i < 20; i++) out.push((await freshGet(`u${i}`))['x-dualtrack-reason']); return out }

  for (let i = 0; i < 20; i++) t.equal((await freshGet(`u${i}`))['x-dualtrack-backend'], 'new')
  // access lines are flushed at least every second
  const pids = new Set<string>()
  await waitFor(() => {
    for (const m of g.output().matchAll(/"pid":(\d+)[^\n]*"msg":"request"/g)) pids.add(m[1] as string)
    return pids.size === 2
  }, { what: 'access lines from two worker pids' })
  t.equal(pids.size, 2, 'both workers served requests')

  // a rollback taken by the admin worker is in force in both workers
  const rb = await call(g.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'cluster test' })
  t.equal(rb.status, 200)
  await waitFor(async () => (await reasons()).every((r) => r === 'rollback'), { what: '20 requests on fresh connections all routed by the rollback', intervalMs: 100 })
  t.pass('every worker routes by the rollback')
  t.equal((await call(g.adminUrl, 'POST', '/admin/resume', OPERATOR, {})).status, 200)
  await waitFor(async () => (await reasons()).every((r) => r !== 'rollback'), { what: '20 requests on fresh connections none routed by the rollback', intervalMs: 100 })
  t.pass('and the resume too')

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
  t.equal(total, proxied + 12, 'requests of both workers are counted')
  t.match(text, /dualtrack_rollout_percent\{rollout="checkout"\} 0\n/, 'gauges are not summed across workers')

  const code = await g.stop()
  t.equal(code, 0, 'SIGTERM drains the workers and the primary exits cleanly')
})
