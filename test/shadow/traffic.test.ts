import t, { type Test } from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { request, Agent } from 'undici'
import { startBackend, type TestBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { call, VIEWER, TOKENS_YAML } from '../helpers/admin.js'
import { waitFor } from '../helpers/wait.js'
import type { ServerResponse } from 'node:http'

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

function shadowRoute (opts: string, timeoutMs: number) {
  return `  - name: shadowed
    match: { prefix: /api/shadowed }
    rollout: checkout
    shadow: { percent: 100, methods: [GET, POST], timeoutMs: ${timeoutMs}, maxInFlight: 8, compare: { ignore: ["$.createdAt", "$.items[*].id"], headers: [content-type] }, redact: ["$.buyer.address"]${opts} }
`
}

async function setup (t: Test, opts = '', legacyBody = () => ORDER(10), freshBody = () => ORDER(10), shadowTimeoutMs = 3000) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  answer(legacy, legacyBody)
  answer(fresh, freshBody)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, routes: shadowRoute(opts, shadowTimeoutMs) }), t)
  return { legacy, fresh, gw }
}

async function get (url: string, user = 'vip-42', method: 'GET' | 'POST' = 'GET', body?: string) {
  const started = performance.now()
  const r = await request(url + '/api/shadowed/1', { method, headers: { 'x-user-id': user, 'content-type': 'application/json', 'idempotency-key': 'idem-1' }, body })
  const text = await r.body.text()
  return { status: r.statusCode, text, ms: performance.now() - started, backend: r.headers['x-dualtrack-backend'] }
}

const counter = async (adminUrl: string, name: string) => {
  const text = await (await request(adminUrl + '/metrics')).body.text()
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{') && l.slice(0, l.lastIndexOf(' ')) === name)
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

interface RouteSummary { match: number, mismatch: number, error: number, dropped: number, noise: number, inFlight: number, noiseFields: string[] }
const summaryOf = async (adminUrl: string): Promise<RouteSummary> =>
  ((await call(adminUrl, 'GET', '/admin/shadow/summary', VIEWER)).body as { routes: { shadowed: RouteSummary } }).routes.shadowed
/** every copy the gateway fired or dropped: in flight, or counted under one result */
const copiesOf = (s: RouteSummary) => s.inFlight + s.match + s.mismatch + s.error + s.dropped + s.noise
/** the gateway finished this many proxied requests of the route (its done() ran: any copy was fired) */
const finished = async (adminUrl: string, method: string, n: number) =>
  (await counter(adminUrl, `dualtrack_requests_total{route="shadowed",backend="legacy",method="${method}",code="200"}`) ?? 0) >= n
/** wait until the counter reaches at least n, then return its value (an exact check follows) */
const counterReaches = (adminUrl: string, name: string, n: number) =>
  waitFor(async () => { const v = await counter(adminUrl, name) ?? 0; return v >= n ? v : undefined }, { what: `${name} to reach ${n}` })

t.test('GET copies go to the other system; POST is not copied by default', async (t) => {
  const { legacy, fresh, gw } = await setup(t)
  const r = await get(gw.url)
  t.equal(r.status, 200)
  t.equal(r.backend, 'legacy')
  await waitFor(() => fresh.seen.length === 1, { what: 'the copy of the GET to reach new' })
  t.equal(fresh.seen[0]?.headers['x-dualtrack-shadow'], '1', 'marked as a copy')
  t.equal(fresh.seen[0]?.url, '/api/shadowed/1')
  t.equal(legacy.seen.length, 1)
  await waitFor(async () => (await summaryOf(gw.adminUrl)).match === 1, { what: 'the GET copy to be compared' })
  t.equal((await get(gw.url, 'vip-42', 'POST', '{"amount":10}')).status, 200)
  // once the POST's done() ran, a copy would be in flight or counted: there is none
  await waitFor(() => finished(gw.adminUrl, 'POST', 1), { what: 'the gateway to finish the POST' })
  const s = await summaryOf(gw.adminUrl)
  t.equal(copiesOf(s), 1, 'the POST was not copied: the GET\'s copy is the only one')
  t.equal(fresh.seen.length, 1, 'new saw no POST')
  t.equal(legacy.seen.length, 2)
  t.equal(await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="match"}'), 1)
})

t.test('writes: dry-run copies a POST once, with the shadow header and the same body', async (t) => {
  const { legacy, fresh, gw } = await setup(t, ', writes: dry-run')
  await get(gw.url, 'vip-42', 'POST', '{"orderId":"o-1","amount":10}')
  // the copy's answer was judged: every attempt of it has reached new by then
  const s = await waitFor(async () => { const v = await summaryOf(gw.adminUrl); return v.inFlight === 0 && copiesOf(v) === 1 ? v : undefined }, { what: 'the one copy of the POST to be answered and judged' })
  t.equal(s.match + s.mismatch, 1, 'compared')
  t.equal(fresh.seen.length, 1, 'exactly once')
  t.equal(legacy.seen.length, 1, 'and the primary once')
  const copy = fresh.seen[0]
  t.equal(copy?.method, 'POST')
  t.equal(copy?.headers['x-dualtrack-shadow'], '1')
  t.equal(copy?.headers['idempotency-key'], 'idem-1', 'Idempotency-Key passes unchanged')
  t.equal(copy?.body.toString(), '{"orderId":"o-1","amount":10}')
  t.equal(legacy.seen[0]?.headers['x-dualtrack-shadow'], undefined, 'the primary is not marked')
})

t.test('a slow shadow target does not hold the client; past maxInFlight copies are dropped', async (t) => {
  // the shadow target holds every copy until the test lets go; a long shadow timeout, so no copy
  // ends on its own while the clients run
  const { fresh, gw } = await setup(t, '', () => ORDER(10), () => ORDER(10), 120_000)
  const held: ServerResponse[] = []
  const events: string[] = []
  fresh.handler = (_req, res) => { held.push(res) }
  const ms: number[] = []
  for (let i = 0; i < 40; i++) {
    const r = await get(gw.url)
    t.equal(r.status, 200, `client request ${i + 1} answered`)
    ms.push(r.ms)
    events.push('client answered')
  }
  // the first 8 copies are held at new, the other 32 found maxInFlight full
  const s = await waitFor(async () => { const v = await summaryOf(gw.adminUrl); return copiesOf(v) === 40 ? v : undefined }, { what: 'all 40 copies to be fired or dropped' })
  t.match(s, { inFlight: 8, dropped: 32, match: 0, mismatch: 0, error: 0, noise: 0 }, 'every client answer came while 8 copies were unanswered; the rest were dropped')
  await waitFor(() => held.length === 8, { what: 'the 8 copies to reach new' })
  t.equal(await counter(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="dropped"}'), 32, 'drops are counted')
  for (const res of held) {
    events.push('shadow answered')
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(ORDER(10))
  }
  t.same(events, [...Array(40).fill('client answered'), ...Array(8).fill('shadow answered')], 'every client answer arrived before any shadow answer')
  const after = await waitFor(async () => { const v = await summaryOf(gw.adminUrl); return v.inFlight === 0 ? v : undefined }, { what: 'the released copies to be judged' })
  t.match(after, { inFlight: 0, match: 8, dropped: 32, error: 0 })
  // informative only: the figure depends on the machine's load
  const sorted = ms.slice().sort((a, b) => a - b)
  t.comment(`client latency with 8 copies held at the shadow target: p50 ${sorted[20]?.toFixed(2)} ms, max ${sorted[39]?.toFixed(2)} ms`)
})

t.test('a shadow target that is down, resets or answers garbage: client unaffected, error counted', async (t) => {
  const { fresh, gw } = await setup(t)
  fresh.handler = (req) => { req.socket.destroy() }
  for (let i = 0; i < 5; i++) t.equal((await get(gw.url)).status, 200)
  const ERRORS = 'dualtrack_shadow_total{route="shadowed",result="error"}'
  t.equal(await counterReaches(gw.adminUrl, ERRORS, 5), 5, 'resets counted as errors')
  fresh.handler = (req) => { req.socket.end('HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\ngarbage') }
  for (let i = 0; i < 3; i++) t.equal((await get(gw.url)).status, 200)
  t.equal(await counterReaches(gw.adminUrl, ERRORS, 8), 8, 'garbage counted as errors')
  await fresh.close()
  for (let i = 0; i < 3; i++) t.equal((await get(gw.url)).status, 200)
  t.equal(await counterReaches(gw.adminUrl, ERRORS, 11), 11, 'a stopped target counted as errors')
})

t.test('compare end to end: reordered keys match, a changed price mismatches at $.items[*].price', async (t) => {
  let price = 10
  const { gw } = await setup(t, '', () => ORDER(10), () => JSON.stringify(JSON.parse(ORDER(price)), ['items', 'sku', 'price', 'id', 'orderId', 'createdAt']))
  await get(gw.url)
  t.equal(await counterReaches(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="match"}', 1), 1, 'reordered keys, other ids and timestamps: a match')
  price = 11
  await get(gw.url)
  t.equal(await counterReaches(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="mismatch"}', 1), 1, 'a changed price: a mismatch')
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
  t.equal(await counterReaches(gw.adminUrl, 'dualtrack_shadow_total{route="shadowed",result="mismatch"}', 1), 1, 'a mismatch')
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
  // every one of the 60 copies answered and judged (or dropped, on a machine slow enough to fill maxInFlight)
  const shadowed = await waitFor(async () => { const v = await summaryOf(gw.adminUrl); return v.inFlight === 0 && copiesOf(v) === 60 ? v : undefined }, { what: 'all 60 copies to be judged' })
  t.same(shadowed.noiseFields, ['$.servedAt'])
  t.equal(shadowed.error, 0)
  t.ok(shadowed.noise > 10 && shadowed.noise < 50, `about half were noise samples (${shadowed.noise})`)
  // after the first noise sample, $.servedAt no longer counts: the late comparisons match
  t.ok(shadowed.match > shadowed.mismatch, `matches ${shadowed.match} > mismatches ${shadowed.mismatch}`)
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
  // the warm-up's copies settle before the baseline is taken
  await waitFor(async () => (await summaryOf(gw.adminUrl)).inFlight === 0, { timeoutMs: 30_000, what: 'the warm-up copies to finish' })
  gc()
  const before = process.memoryUsage().heapUsed
  t.equal(await run(20_000), 0, '20,000 requests, none failed')
  await waitFor(async () => (await summaryOf(gw.adminUrl)).inFlight === 0, { timeoutMs: 30_000, what: 'the copies of the 20,000 requests to finish' })
  gc()
  const after = process.memoryUsage().heapUsed
  const grew = (after - before) / 1024 / 1024
  t.comment(`heap before ${(before / 1048576).toFixed(1)} MiB, after ${(after / 1048576).toFixed(1)} MiB`)
  t.ok(grew < 25, `heap grew ${grew.toFixed(1)} MiB over 20,000 requests`)
  const samples = (await call(gw.adminUrl, 'GET', '/admin/shadow/mismatches?limit=500', VIEWER)).body.samples as unknown[]
  t.ok(samples.length > 0 && samples.length <= 100, `the mismatch store keeps its cap (${samples.length} samples, at most 10 a second)`)
})

