import t, { type Test } from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { request, Agent } from 'undici'
import { startBackend, type TestBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, VIEWER, TOKENS_YAML } from '../helpers/admin.js'

const ORDER = (price: number, extra: Record<string, unknown> = {}) => JSON.stringify({
  orderId: 'o-1', createdAt: new Date().toISOString(), items: [{ id: Math.random(), sku: 'tea', price }, { id: Math.random(), sku: 'cup', price: 5 }], ...extra
})

function answer (b: TestBackend, body: () => string, delayMs = 0) {
  b.handler = (_req, res) => {
    const send = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(body()) }
    if (delayMs > 0) setTimeout(send, delayMs).unref()
    else send()
  }
}

function shadowRoute (opts: string) {
  return `  - name: shadowed
    match: { prefix: /api/shadowed }
    rollout: checkout
    shadow: { percent: 100, methods: [GET, POST], timeoutMs: 3000, maxInFlight: 8, compare: { ignore: ["$.createdAt", "$.items[*].id"], headers: [content-type] }, redact: ["$.buyer.address"]${opts} }
`
}

async function setup (t: Test, opts = '', legacyBody = () => ORDER(10), freshBody = () => ORDER(10)) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  answer(legacy, legacyBody)
  answer(fresh, freshBody)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, routes: shadowRoute(opts) }), t)
  return { legacy, fresh, gw }
}

async function get (url: string, user = 'vip-42', method: 'GET' | 'POST' = 'GET', body?: string) {
  const started = performance.now()
  const r = await request(url + '/api/shadowed/1', { method, headers: { 'x-user-id': user, 'content-type': 'application/json', 'idempotency-key': 'idem-1' }, body })
  const text = await r.body.text()
  return { status: r.statusCode, text, ms: performance.now() - started, backend: r.headers['x-dualtrack-backend'] }
}

async function until (what: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms
  while (!(await what())) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}

const counter = async (adminUrl: string, name: string) => {
  const text = await (await request(adminUrl + '/metrics')).body.text()
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{') && l.slice(0, l.lastIndexOf(' ')) === name)
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('GET copies go to the other system; POST is not copied by default', async (t) => {
  const { legacy, fresh, gw } = await setup(t)
  const r = await get(gw.url)
  t.equal(r.status, 200)
  t.equal(r.backend, 'legacy')
  t.ok(await until(() => fresh.seen.length === 1), 'the copy reached new')
  t.equal(fresh.seen[0]?.headers['x-dualtrack-shadow'], '1', 'marked as a copy')
  t.equal(fresh.seen[0]?.url, '/api/shadowed/1')
  t.equal(legacy.seen.length, 1)
  await get(gw.url, 'vip-42', 'POST', '{"amount":10}')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(fresh.seen.length, 1, 'the POST was not copied')
  t.equal(legacy.seen.length, 2)
  t.equal(await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="match"}'), 1)
})

t.test('writes: dry-run copies a POST once, with the shadow header and the same body', async (t) => {
  const { legacy, fresh, gw } = await setup(t, ', writes: dry-run')
  await get(gw.url, 'vip-42', 'POST', '{"orderId":"o-1","amount":10}')
  t.ok(await until(() => fresh.seen.length === 1))
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(fresh.seen.length, 1, 'exactly once')
  t.equal(legacy.seen.length, 1, 'and the primary once')
  const copy = fresh.seen[0]
  t.equal(copy?.method, 'POST')
  t.equal(copy?.headers['x-dualtrack-shadow'], '1')
  t.equal(copy?.headers['idempotency-key'], 'idem-1', 'Idempotency-Key passes unchanged')
  t.equal(copy?.body.toString(), '{"orderId":"o-1","amount":10}')
  t.equal(legacy.seen[0]?.headers['x-dualtrack-shadow'], undefined, 'the primary is not marked')
})

t.test('a slow shadow target does not change the client latency; past maxInFlight copies are dropped', async (t) => {
  const { fresh, gw } = await setup(t)
  // baseline with the shadow target fast, then the same with it sleeping 2 s
  const p50 = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
  const fast: number[] = []
  for (let i = 0; i < 40; i++) fast.push((await get(gw.url)).ms)
  answer(fresh, () => ORDER(10), 2000)
  const slow: number[] = []
  let failed = 0
  for (let i = 0; i < 40; i++) {
    const r = await get(gw.url)
    if (r.status !== 200) failed++
    slow.push(r.ms)
  }
  t.equal(failed, 0, 'every client request succeeded')
  t.comment(`client p50 with a fast shadow target ${p50(fast).toFixed(2)} ms, with a 2 s one ${p50(slow).toFixed(2)} ms`)
  t.ok(p50(slow) < p50(fast) + 20, 'within a small margin of the fast case, nowhere near 2 s')
  const dropped = await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="dropped"}')
  t.ok((dropped ?? 0) >= 40 - 8 - 1, `past maxInFlight 8, copies were dropped and counted (${dropped})`)
  const summary = (await call(gw.adminUrl, 'GET', '/admin/shadow/summary', VIEWER)).body as { routes: { shadowed: { inFlight: number } } }
  t.ok(summary.routes.shadowed.inFlight <= 8, 'never more than maxInFlight in flight')
})

t.test('a shadow target that is down, resets or answers garbage: client unaffected, error counted', async (t) => {
  const { fresh, gw } = await setup(t)
  fresh.handler = (req) => { req.socket.destroy() }
  for (let i = 0; i < 5; i++) t.equal((await get(gw.url)).status, 200)
  t.ok(await until(async () => (await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="error"}')) === 5), 'resets counted as errors')
  fresh.handler = (req) => { req.socket.end('HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\ngarbage') }
  for (let i = 0; i < 3; i++) t.equal((await get(gw.url)).status, 200)
  t.ok(await until(async () => (await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="error"}')) === 8), 'garbage counted as errors')
  await fresh.close()
  for (let i = 0; i < 3; i++) t.equal((await get(gw.url)).status, 200)
  t.ok(await until(async () => (await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="error"}')) === 11), 'a stopped target counted as errors')
})

t.test('compare end to end: reordered keys match, a changed price mismatches at $.items[*].price', async (t) => {
  let price = 10
  const { gw } = await setup(t, '', () => ORDER(10), () => JSON.stringify(JSON.parse(ORDER(price)), ['items', 'sku', 'price', 'id', 'orderId', 'createdAt']))
  await get(gw.url)
  t.ok(await until(async () => (await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="match"}')) === 1), 'reordered keys, other ids and timestamps: a match')
  price = 11
  await get(gw.url)
  t.ok(await until(async () => (await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="mismatch"}')) === 1))
  t.equal(await counter(gw.adminUrl, 'dualtrack_shadow_field_mismatches_total{route="shadowed",field="$.items[*].price"}'), 1)
  const m = await call(gw.adminUrl, 'GET', '/admin/shadow/mismatches?route=shadowed&limit=5', VIEWER)
  const samples = m.body.samples as { fields: string[], primary: { backend: string, status: number, body: { items: { price: number }[] } }, shadow: { backend: string, body: { items: { price: number }[] } } }[]
  t.equal(samples.length, 1)
  t.match(samples[0], { route: 'shadowed', method: 'GET', path: '/api/shadowed/1', fields: ['$.items[*].price'], primary: { backend: 'legacy', status: 200 }, shadow: { backend: 'new', status: 200 } })
  t.equal(samples[0]?.primary.body.items[0]?.price, 10)
  t.equal(samples[0]?.shadow.body.items[0]?.price, 11)
  const s = await call(gw.adminUrl, 'GET', '/admin/shadow/summary', VIEWER)
  t.match(s.body, { routes: { shadowed: { match: 1, mismatch: 1, matchRate: 0.5, topFields: [{ field: '$.items[*].price', count: 1 }] } } })
})

t.test('redaction: card and phone numbers never reach the mismatch store or the logs', async (t) => {
  const { gw } = await setup(t, '',
    () => JSON.stringify({ card: '4111 1111 1111 1111', phone: '13812345678', buyer: { address: '1 Secret Road' }, total: 1 }),
    () => JSON.stringify({ card: '4111 1111 1111 1111', phone: '13812345678', buyer: { address: '1 Secret Road' }, total: 2 }))
  await get(gw.url)
  t.ok(await until(async () => (await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="mismatch"}')) === 1))
  const m = await call(gw.adminUrl, 'GET', '/admin/shadow/mismatches', VIEWER)
  const text = JSON.stringify(m.body) + JSON.stringify(gw.logs)
  t.match(JSON.stringify(m.body), '$.total')
  t.notMatch(text, '4111 1111 1111 1111')
  t.notMatch(text, '4111111111111111')
  t.notMatch(text, '13812345678')
  t.notMatch(text, 'Secret Road')
  t.match(JSON.stringify(m.body), '1111', 'the last four digits stay, for support')
})

t.test('noise learning: a field that differs between two answers of one system is noise', async (t) => {
  let n = 0
  const body = () => JSON.stringify({ orderId: 'o-1', servedAt: `t-${n++}`, total: 1 })
  const { gw } = await setup(t, ', sameBackendPercent: 50', body, body)
  for (let i = 0; i < 60; i++) await get(gw.url, 'vip-42')
  t.ok(await until(async () => ((await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="noise"}')) ?? 0) > 0))
  await new Promise((resolve) => setTimeout(resolve, 200))
  const s = await call(gw.adminUrl, 'GET', '/admin/shadow/summary', VIEWER)
  const routes = s.body.routes as { shadowed: { noiseFields: string[], noise: number, match: number, mismatch: number } }
  t.same(routes.shadowed.noiseFields, ['$.servedAt'])
  t.ok(routes.shadowed.noise > 10 && routes.shadowed.noise < 50, `about half were noise samples (${routes.shadowed.noise})`)
  // after the first noise sample, $.servedAt no longer counts: the late comparisons match
  t.ok(routes.shadowed.match > routes.shadowed.mismatch, `matches ${routes.shadowed.match} > mismatches ${routes.shadowed.mismatch}`)
})

t.test('memory: 20,000 shadowed requests with a slow target stay bounded', async (t) => {
  const { fresh, gw } = await setup(t, '', () => ORDER(10), () => ORDER(11))
  answer(fresh, () => ORDER(11), 300)
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const agent = new Agent({ connections: 32 })
  t.teardown(() => agent.close())
  const run = async (count: number) => {
    let i = 0
    let failed = 0
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (i++ < count) {
        const r = await request(gw.url + '/api/shadowed/1', { headers: { 'x-user-id': 'vip-42' }, dispatcher: agent })
        await r.body.dump()
        if (r.statusCode !== 200) failed++
      }
    }))
    return failed
  }
  t.equal(await run(2000), 0)
  await new Promise((resolve) => setTimeout(resolve, 500))
  gc()
  const before = process.memoryUsage().heapUsed
  t.equal(await run(20_000), 0, '20,000 requests, none failed')
  await until(async () => ((await call(gw.adminUrl, 'GET', '/admin/shadow/summary', VIEWER)).body as { routes: { shadowed: { inFlight: number } } }).routes.shadowed.inFlight === 0, 5000)
  gc()
  const after = process.memoryUsage().heapUsed
  const grew = (after - before) / 1024 / 1024
  t.comment(`heap before ${(before / 1048576).toFixed(1)} MiB, after ${(after / 1048576).toFixed(1)} MiB`)
  t.ok(grew < 25, `heap grew ${grew.toFixed(1)} MiB over 20,000 requests`)
  const samples = (await call(gw.adminUrl, 'GET', '/admin/shadow/mismatches?limit=500', VIEWER)).body.samples as unknown[]
  t.ok(samples.length > 0 && samples.length <= 100, `the mismatch store keeps its cap (${samples.length} samples, at most 10 a second)`)
})

