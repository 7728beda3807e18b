// the ledger export at scale: 100,000 owners from Redis with the memory the export holds measured
// after garbage collection, the rate through a gateway process, and server.workers exporting
// through the primary
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Redis } from 'ioredis'
import pino from 'pino'
import { request } from 'undici'
import { startGatewayFromYaml, tempDir } from '../helpers/gateway.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { startRedis } from '../helpers/redis.js'
import { spawnGateway } from '../helpers/process.js'
import { startOrderSystem, orderYaml } from '../helpers/order-system.js'
import { RedisStore, SCAN_COUNT } from '../../src/state/redis-store.js'

// a full collection on demand: what the heap holds after it is what the export keeps
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

interface Line { orderId: string, owner: string, learnedAt: string | null, rollout: string }

async function exportOwners (adminUrl: string, query: string): Promise<{ status: number, lines: Line[] }> {
  const r = await request(`${adminUrl}/admin/affinity${query}`, { headers: { authorization: `Bearer ${VIEWER}` } })
  const text = await r.body.text()
  return { status: r.statusCode, lines: r.statusCode === 200 ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line) : [] }
}

t.test('an export of 100,000 owners from Redis: memory stays flat', async (t) => {
  const redis = await startRedis(t)
  const prefix = `big${process.pid}:`
  const total = 100_000
  const c = new Redis(redis.url)
  t.teardown(() => c.disconnect())
  const at = Date.UTC(2026, 10, 30, 12, 0, 0)
  for (let i = 0; i < total; i += 5000) {
    const p = c.pipeline()
    for (let j = i; j < i + 5000; j++) p.set(`${prefix}aff:checkout:ORD-${String(j).padStart(7, '0')}`, `${j % 2 === 0 ? 'new' : 'legacy'} ${at + j}`, 'PX', 3_600_000)
    await p.exec()
  }
  // a record written before the ledger existed: the owner alone
  await c.set(`${prefix}aff:checkout:OLD-1`, 'new', 'PX', 3_600_000)

  await t.test('the store holds one SCAN batch at a time', async (t) => {
    const store = new RedisStore({ connection: { target: { kind: 'server', url: redis.url } }, prefix, cacheFile: join(tempDir(), 'c.json'), log: pino({ level: 'silent' }) })
    await store.connect()
    t.teardown(() => store.close())
    let n = 0
    let largest = 0
    for await (const batch of store.owners({ backend: 'new' })) {
      n += batch.length
      largest = Math.max(largest, batch.length)
    }
    t.equal(n, total / 2 + 1)
    t.ok(largest <= 2 * SCAN_COUNT, `the largest batch held ${largest} owners`)
    t.same(await store.ownerRecord('checkout', 'OLD-1'), { rollout: 'checkout', orderId: 'OLD-1', owner: 'new', learnedAt: null })
    t.same(await store.ownerRecord('checkout', 'ORD-0000002'), { rollout: 'checkout', orderId: 'ORD-0000002', owner: 'new', learnedAt: new Date(at + 2).toISOString() })
  })

  await t.test('through the admin API: what the heap holds during the export, after collection', async (t) => {
    const fresh = await startOrderSystem('new', t)
    const g = await startGatewayFromYaml(orderYaml(fresh.url, fresh.url, `state: { store: redis, file: "${join(tempDir(), 'c.json')}", redis: { url: "${redis.url}", prefix: "${prefix}" } }`, { operator: OPERATOR, viewer: VIEWER }), t)
    t.equal((await exportOwners(g.adminUrl, '?rollout=none')).status, 200)
    gc()
    const before = process.memoryUsage().heapUsed
    let held = 0
    let lines = 0
    let sinceGc = 0
    const res = await request(`${g.adminUrl}/admin/affinity`, { headers: { authorization: `Bearer ${VIEWER}` } })
    for await (const chunk of res.body) {
      for (const byte of chunk as Buffer) if (byte === 10) lines++
      sinceGc += (chunk as Buffer).length
      // every ~1 MB received: collect, and see what is still held (the export's state, mid-stream)
      if (sinceGc > 1_000_000) {
        sinceGc = 0
        gc()
        held = Math.max(held, process.memoryUsage().heapUsed - before)
      }
    }
    t.equal(lines, total + 1)
    const mb = held / 1_048_576
    t.comment(`heap held mid-export, after collection: at most ${mb.toFixed(1)} MB above the start (the whole export is 10 MB of NDJSON, more as records)`)
    // an export built in memory would hold the records (tens of MB) or the text (10 MB) mid-stream
    t.ok(mb < 6, `at most ${mb.toFixed(1)} MB held while streaming 100,001 owners`)
  })

  await t.test('a gateway process streams them: RSS before and during, and the rate', async (t) => {
    const dir = tempDir()
    const file = join(dir, 'gateway.yaml')
    const fresh = await startOrderSystem('new', t)
    writeFileSync(file, orderYaml(fresh.url, fresh.url, `state: { store: redis, file: "${join(dir, 'cache.json')}", redis: { url: "${redis.url}", prefix: "${prefix}" } }`, { operator: OPERATOR, viewer: VIEWER }))
    const g = await spawnGateway(file, t)
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${g.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
    // a small export first: the first one loads code and warms the heap
    t.equal((await exportOwners(g.adminUrl, '?rollout=none')).status, 200)
    const rounds: { peak: number, ms: number }[] = []
    const before = rss()
    for (let round = 0; round < 2; round++) {
      let peak = rss()
      const sampler = setInterval(() => { peak = Math.max(peak, rss()) }, 5)
      const started = performance.now()
      const res = await request(`${g.adminUrl}/admin/affinity`, { headers: { authorization: `Bearer ${VIEWER}` } })
      let lines = 0
      let bytes = 0
      for await (const chunk of res.body) {
        for (const byte of chunk as Buffer) if (byte === 10) lines++
        bytes += (chunk as Buffer).length
      }
      const ms = performance.now() - started
      clearInterval(sampler)
      peak = Math.max(peak, rss())
      t.equal(lines, total + 1, `round ${round + 1}: every owner, once`)
      rounds.push({ peak, ms })
      t.comment(`round ${round + 1}: ${lines} owners (${(bytes / 1e6).toFixed(1)} MB of NDJSON) in ${ms.toFixed(0)} ms = ${Math.round(lines / (ms / 1000))} owners/s; gateway RSS ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB at most during`)
    }
    // RSS is printed, not asserted: its peak is mostly garbage V8 has not collected yet; what the
    // export holds is measured after collection above
    t.ok(rounds.length === 2)
  })
})

t.test('server.workers with the file store: the export runs in the primary, a batch per IPC call', async (t) => {
  const legacy = await startOrderSystem('legacy', t)
  const fresh = await startOrderSystem('new', t)
  const dir = tempDir()
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, orderYaml(legacy.url, fresh.url, `state: { store: file, file: "${join(dir, 'state.json')}" }`, { operator: OPERATOR, viewer: VIEWER })
    .replace('server: { host: 127.0.0.1, port: 0 }', 'server: { host: 127.0.0.1, port: 0, workers: 2 }'))
  const g = await spawnGateway(file, t)
  const owners = new Map<string, string>()
  let next = 0
  // 8 at a time: the orders reach both workers
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < 800) {
      const i = next++
      const r = await request(g.url + '/api/orders', { method: 'POST', headers: { 'x-user-id': `w-${i}`, 'content-type': 'application/json' }, body: '{}' })
      owners.set((await r.body.json() as { orderId: string }).orderId, String(r.headers['x-dualtrack-backend']))
    }
  }))
  const ex = await exportOwners(g.adminUrl, '?backend=new')
  t.equal(ex.status, 200)
  t.same(ex.lines.map((l) => l.orderId).sort(), [...owners].filter(([, o]) => o === 'new').map(([id]) => id).sort(), 'exactly what new owns, learned by both workers')
  const [id, owner] = [...owners][0] as [string, string]
  t.match((await call(g.adminUrl, 'GET', `/admin/affinity/${id}`, VIEWER)).body, { orderId: id, owner })
})
