// a three-master Redis Cluster: the state (one hash tag, one slot) propagates between gateways,
// affinity keys spread over every shard, the ledger export SCANs every master, and with one
// master killed every request is still answered
import t from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { startGatewayFromYaml, tempDir, type TestGateway } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { startCluster, keysOn } from '../helpers/redis-ha.js'
import { startOrderSystem, orderYaml } from '../helpers/order-system.js'
import { waitFor } from '../helpers/wait.js'
import { join } from 'node:path'

async function post (base: string, path: string, opts: { user?: string, json?: unknown, form?: Record<string, string> }) {
  const headers: Record<string, string> = {}
  if (opts.user !== undefined) headers['x-user-id'] = opts.user
  let body: string | undefined
  if (opts.json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(opts.json) }
  if (opts.form !== undefined) { headers['content-type'] = 'application/x-www-form-urlencoded'; body = new URLSearchParams(opts.form).toString() }
  const r = await request(base + path, { method: 'POST', headers, body })
  const text = await r.body.text()
  return { status: r.statusCode, backend: String(r.headers['x-dualtrack-backend']), reason: String(r.headers['x-dualtrack-reason']), body: JSON.parse(text) as Record<string, unknown> }
}

async function exportOwners (g: TestGateway, backend: string): Promise<{ status: number, lines: { orderId: string, owner: string, learnedAt: string | null, rollout: string }[] }> {
  const r = await request(`${g.adminUrl}/admin/affinity?backend=${backend}`, { headers: { authorization: `Bearer ${VIEWER}` } })
  const text = await r.body.text()
  return { status: r.statusCode, lines: text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { orderId: string, owner: string, learnedAt: string | null, rollout: string }) }
}

// does this node hold the key (a plain client gets MOVED for a key of another node)
async function holds (port: number, key: string): Promise<boolean> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null })
  c.on('error', () => {})
  try {
    await c.connect()
    return (await c.exists(key)) === 1
  } catch {
    return false
  } finally {
    c.disconnect()
  }
}

t.test('a three-master Redis Cluster', async (t) => {
  const cluster = await startCluster(t)
  const legacy = await startOrderSystem('legacy', t)
  const fresh = await startOrderSystem('new', t)
  const dir = tempDir()
  const prefix = `cl${process.pid}:`
  // the rollout is guarded at fleet scope (the default with a Redis store): its counters go to the cluster too
  const yaml = (i: number) => orderYaml(legacy.url, fresh.url,
    `state: { store: redis, file: "${join(dir, `cache-${i}.json`)}", redis: { cluster: [${cluster.addrs.map((a) => `"${a}"`).join(', ')}], prefix: "${prefix}" } }`,
    { operator: OPERATOR, viewer: VIEWER }).replace('    cohortKey: [header:x-user-id]\n', '    cohortKey: [header:x-user-id]\n    guard: { window: 30s, minRequests: 1000, maxErrorRateDelta: 0.05 }\n')
  const a = await startGatewayFromYaml(yaml(0), t)
  const b = await startGatewayFromYaml(yaml(1), t)
  for (const g of [a, b]) await waitFor(async () => (await call(g.adminUrl, 'GET', '/readyz')).body.storeUp === true, { what: 'the gateway on the cluster' })

  await t.test('a state change on one gateway reaches the other', async (t) => {
    const put = await call(a.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 40 })
    t.equal(put.status, 200)
    t.equal(put.body.propagated, true)
    await waitFor(async () => ((await call(b.adminUrl, 'GET', '/admin/state', VIEWER)).body as { rollouts: { checkout: { percent: number } } }).rollouts.checkout.percent === 40,
      { what: 'percent 40 on the other gateway' })
    const put2 = await call(b.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 50 })
    t.equal(put2.status, 200)
    await waitFor(async () => ((await call(a.adminUrl, 'GET', '/admin/state', VIEWER)).body as { rollouts: { checkout: { percent: number } } }).rollouts.checkout.percent === 50,
      { what: 'percent 50 back on the first gateway' })
    const audit = await call(a.adminUrl, 'GET', '/admin/audit?limit=5', VIEWER)
    t.ok((audit.body.entries as unknown[]).length >= 2, 'the audit list is on the same slot as the state')
  })

  const owners = new Map<string, string>()
  await t.test('/admin/stats on either gateway shows both: the slots are hash-tagged onto one shard', async (t) => {
    type Stats = { scope: string, replicas?: number, fleet?: string, backends: Record<string, { rps: (number | null)[] }> }
    const stats = async (g: TestGateway) => (await call(g.adminUrl, 'GET', '/admin/stats?window=15m', VIEWER)).body as unknown as Stats
    const total = (s: Stats) => Math.round(Object.values(s.backends).flatMap((b) => b.rps).reduce<number>((x, v) => x + (v ?? 0), 0) * 5)
    await waitFor(async () => (await stats(a)).scope === 'fleet' && (await stats(b)).replicas === 2, { what: 'fleet scope with 2 replicas', timeoutMs: 60_000 })
    const before = total(await stats(a))
    for (const [g, n] of [[a, 7], [b, 4]] as const) {
      for (let i = 0; i < n; i++) {
        const r = await request(`${g.url}/api/orders/none-${i}`, { headers: { 'x-user-id': `s${i}` } })
        await r.body.dump()
      }
    }
    for (const g of [a, b]) {
      const s = await waitFor(async () => { const v = await stats(g); return v.scope === 'fleet' && total(v) === before + 11 ? v : undefined }, { what: `${before} + 11 requests in the fleet's series`, timeoutMs: 60_000 })
      t.equal(s.fleet, undefined)
    }
  })

  await t.test('the guard judges the fleet: its counters share one hash tag, so one pipeline reaches them', async (t) => {
    type Guard = { scope?: string, backends?: { legacy: { requests: number }, new: { requests: number } } }
    const guard = async (g: TestGateway) => ((await call(g.adminUrl, 'GET', '/admin/guard', VIEWER)).body.rollouts as Record<string, Guard>).checkout as Guard
    // "not judged yet" has no counts
    const sum = (v: Guard) => v.backends === undefined ? 0 : v.backends.legacy.requests + v.backends.new.requests
    const before = [sum(await guard(a)), sum(await guard(b))]
    for (const [g, n] of [[a, 6], [b, 5]] as const) {
      for (let i = 0; i < n; i++) {
        const r = await request(`${g.url}/api/orders/guarded-${i}`, { headers: { 'x-user-id': `g${i}` } })
        await r.body.dump()
      }
    }
    for (const [k, g] of [a, b].entries()) {
      const v = await waitFor(async () => { const x = await guard(g); return x.scope === 'fleet' && sum(x) >= (before[k] as number) + 11 ? x : undefined }, { what: 'the guard at fleet scope counting both replicas\' requests', timeoutMs: 60_000 })
      t.equal(v.scope, 'fleet', 'not "replica (store down)"')
    }
  })

  await t.test('affinity keys land on every shard; the export SCANs every master', async (t) => {
    for (let i = 0; i < 300; i++) {
      const r = await post(a.url, '/api/orders', { user: `c-${i}`, json: {} })
      t.equal(r.status, 201)
      owners.set(String(r.body.orderId), r.backend)
    }
    const perNode = await Promise.all(cluster.nodes.map((n) => keysOn(n.port, `${prefix}aff:*`)))
    t.comment(`affinity keys per shard: ${perNode.join(', ')}`)
    t.ok(perNode.every((n) => n > 0), 'every shard holds some')
    t.equal(perNode.reduce((x, y) => x + y, 0), 300)
    for (const backend of ['legacy', 'new']) {
      const ex = await exportOwners(b, backend)
      t.equal(ex.status, 200)
      const want = [...owners].filter(([, o]) => o === backend).map(([id]) => id).sort()
      t.same(ex.lines.map((l) => l.orderId).sort(), want, `exactly the ${want.length} orders ${backend} owns`)
      t.ok(ex.lines.every((l) => l.owner === backend && l.rollout === 'checkout' && typeof l.learnedAt === 'string'))
    }
  })

  await t.test('one master killed: every request is still answered', async (t) => {
    const victim = cluster.nodes[0] as (typeof cluster.nodes)[number]
    const onVictim = new Set<string>()
    for (const id of owners.keys()) if (await holds(victim.port, `${prefix}aff:checkout:${id}`)) onVictim.add(id)
    t.ok(onVictim.size > 0 && onVictim.size < owners.size, `${onVictim.size} of ${owners.size} owners on the master to kill`)
    await victim.kill()
    const answered: number[] = []
    const wrong: string[] = []
    // callbacks through the gateway that never saw the orders: the owners on the other shards are found
    for (const [id, owner] of owners) {
      const c = await post(b.url, '/api/payments/notify', { form: { out_trade_no: id } })
      answered.push(c.status)
      if (!onVictim.has(id) && (c.backend !== owner || c.reason !== 'affinity')) wrong.push(`${id}: ${c.backend} ${c.reason}, owner ${owner}`)
    }
    // new orders and their payments, through both gateways
    for (let i = 0; i < 100; i++) {
      const g = i % 2 === 0 ? a : b
      const o = await post(g.url, '/api/orders', { user: `k-${i}`, json: {} })
      answered.push(o.status)
      const p = await post(g.url, '/api/payments', { user: `k-${i}`, json: { orderId: o.body.orderId } })
      answered.push(p.status)
      if (p.backend !== o.backend) wrong.push(`payment ${String(o.body.orderId)} on ${p.backend}, order on ${o.backend}`)
      const c = await post(g.url, '/api/payments/notify', { form: { out_trade_no: String(o.body.orderId) } })
      answered.push(c.status)
      if (c.backend !== o.backend) wrong.push(`callback ${String(o.body.orderId)} on ${c.backend}, order on ${o.backend}`)
    }
    t.same(answered.filter((s) => s >= 500), [], `${answered.length} requests, none failed by the gateway`)
    t.same(wrong, [], 'owners on the surviving shards are still found; new orders keep their payments and callbacks on one system')
    const unknown = [...onVictim].filter((id) => owners.get(id) === 'new').length
    t.comment(`with a shard gone: ${owners.size - onVictim.size} callbacks followed their owner through the store; ${onVictim.size} fell through to the rules (${unknown} of them for orders on new)`)
  })
})
