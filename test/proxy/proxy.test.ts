import t, { type Test } from 'tap'
import net from 'node:net'
import http from 'node:http'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { randomBytes } from 'node:crypto'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { bucketOf, encodeSalt } from '../../src/routing/index.js'
import { waitFor } from '../helpers/wait.js'

async function setup (t: Test, extra: Parameters<typeof basicYaml>[2] = {}) {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, extra), t)
  return { legacy, fresh, gw }
}

async function get (url: string, headers: Record<string, string> = {}, method: 'GET' | 'POST' = 'GET', body?: Buffer | string) {
  const res = await request(url, { method, headers, body })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: (() => { try { return JSON.parse(text) as Record<string, unknown> } catch { return undefined } })() }
}

// node:http lets a test send the hop-by-hop headers undici refuses to send
function rawGet (url: string, headers: Record<string, string>) {
  return new Promise<{ status: number, headers: http.IncomingHttpHeaders, text: string }>((resolve, reject) => {
    const req = http.request(url, { headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('every reason of the precedence table, end to end', async (t) => {
  const { gw } = await setup(t)
  const salt = encodeSalt('test-salt')
  // find a user on each side of 50% so the assertions do not depend on luck
  let onNew = ''
  let onLegacy = ''
  for (let i = 0; !onNew || !onLegacy; i++) {
    if (bucketOf(salt, `u${i}`) < 5000) onNew ||= `u${i}`
    else onLegacy ||= `u${i}`
  }
  const cases: [Record<string, string>, string, string, string][] = [
    [{ 'x-user-id': onNew }, '/api/orders/1', 'new', 'percent'],
    [{ 'x-user-id': onLegacy }, '/api/payments', 'legacy', 'percent'],
    [{ 'x-user-id': 'qa-user-1' }, '/api/orders', 'new', 'force'],
    [{ 'x-user-id': 'vip-42' }, '/api/orders', 'legacy', 'force'],
    [{ 'x-user-id': onLegacy, 'x-region': 'guangdong' }, '/api/orders', 'new', 'region'],
    [{ 'x-user-id': onNew, 'x-region': 'zhejiang' }, '/api/orders', 'legacy', 'region'],
    [{}, '/api/orders', 'legacy', 'unkeyed'],
    [{ 'x-user-id': onNew }, '/elsewhere', 'legacy', 'default'],
    [{ 'x-user-id': onNew }, '/api/ordersX', 'legacy', 'default']
  ]
  for (const [headers, path, backend, reason] of cases) {
    const r = await get(gw.url + path, headers)
    t.equal(r.status, 200)
    t.equal(r.headers['x-dualtrack-backend'], backend, `${path} ${JSON.stringify(headers)}: backend`)
    t.equal(r.headers['x-dualtrack-reason'], reason, `${path} ${JSON.stringify(headers)}: reason`)
    t.equal(r.json?.system, backend, 'the answer came from that backend')
  }
  // rollback and affinity go through the same decision, driven by run-time state
  gw.app.dataPlane.router.applyState({ checkout: { percent: 50, regions: {}, rollback: 'hard' } })
  const rb = await get(gw.url + '/api/orders', { 'x-user-id': 'qa-user-1' })
  t.same([rb.headers['x-dualtrack-backend'], rb.headers['x-dualtrack-reason'], rb.json?.system], ['legacy', 'rollback', 'legacy'])
  gw.app.dataPlane.hooks = { ...gw.app.dataPlane.hooks, lookupOwner: () => 'new' }
  gw.app.dataPlane.router.applyState({ checkout: { percent: 50, regions: {}, rollback: null } })
  const af = await get(gw.url + '/api/payments', { 'x-user-id': 'vip-42' })
  t.same([af.headers['x-dualtrack-backend'], af.headers['x-dualtrack-reason'], af.json?.system], ['new', 'affinity', 'new'])
})

t.test('bodies arrive byte-exact both ways', async (t) => {
  const { legacy, gw } = await setup(t)
  const big = randomBytes(512 * 1024)
  legacy.handler = (_req, res, body) => { res.writeHead(200, { 'content-type': 'application/octet-stream' }); res.end(body) }
  const res = await request(gw.url + '/api/orders', { method: 'POST', body: big, headers: { 'content-type': 'application/octet-stream', 'x-user-id': 'vip-42' } })
  const back = Buffer.from(await res.body.arrayBuffer())
  t.equal(res.statusCode, 200)
  t.ok(legacy.seen.at(-1)?.body.equals(big), 'the backend got the 512 KiB body byte for byte')
  t.ok(back.equals(big), 'the client got it back byte for byte')
  // chunked upload (no content-length) streams too
  async function * gen () { yield big.subarray(0, 1000); yield big.subarray(1000, 300_000) }
  const res2 = await request(gw.url + '/api/orders', { method: 'POST', body: Readable.from(gen()), headers: { 'x-user-id': 'vip-42' } })
  t.ok(Buffer.from(await res2.body.arrayBuffer()).equals(big.subarray(0, 300_000)))
  legacy.handler = undefined
  const g = await get(gw.url + '/api/orders/7?x=1', { 'x-user-id': 'vip-42' })
  t.same(g.json, { system: 'legacy', method: 'GET', url: '/api/orders/7?x=1', bytes: 0 }, 'path and query pass unchanged')
})

t.test('a body over server.bodyLimit is refused with 413 and never sent', async (t) => {
  const { legacy, gw } = await setup(t, { top: 'server: { bodyLimit: 1000 }' })
  const r = await get(gw.url + '/api/orders', { 'x-user-id': 'vip-42', 'content-type': 'application/json' }, 'POST', 'x'.repeat(2000))
  t.equal(r.status, 413)
  t.same(r.json, { error: 'DUALTRACK_ERR_BODY_TOO_LARGE', message: 'request body is larger than 1000 bytes' })
  t.equal(legacy.seen.length, 0)
})

t.test('a backend that does not answer gives 504 after the configured timeout', async (t) => {
  const { legacy, gw } = await setup(t, { timeoutMs: 300 })
  // the backend never answers on its own: the 504 can only come from the gateway's timeout
  const held: http.ServerResponse[] = []
  legacy.handler = (_req, res) => { held.push(res) }
  const started = performance.now()
  const r = await get(gw.url + '/api/orders', { 'x-user-id': 'vip-42' })
  const took = performance.now() - started
  t.equal(r.status, 504)
  t.same(r.json, { error: 'DUALTRACK_ERR_UPSTREAM_TIMEOUT', message: 'the legacy system did not answer in time', backend: 'legacy' })
  t.equal(r.headers['x-dualtrack-backend'], 'legacy')
  t.equal(held.length, 1, 'the request reached the backend once')
  t.equal(held[0]?.headersSent, false, 'the client had its 504 while the backend had not answered')
  // informative only: with timeoutMs 300 this is about 300 ms plus the machine's load
  t.comment(`answered after ${took.toFixed(0)} ms (timeout 300 ms)`)
})

t.test('a stopped backend gives 502; on connect failure GET is retried twice, a POST once (it never left)', async (t) => {
  const { legacy, gw } = await setup(t)
  await legacy.close()
  const r = await get(gw.url + '/api/orders', { 'x-user-id': 'vip-42' })
  t.equal(r.status, 502)
  t.same(r.json, { error: 'DUALTRACK_ERR_UPSTREAM_CONNECT', message: 'could not connect to the legacy system', backend: 'legacy' })
  const line = gw.logs.findLast((l) => l.msg === 'request')
  t.equal(line?.attempts, 3, 'GET went three times: once plus two retries')
  t.equal(line?.upstreamError, 'connect')
  const p = await get(gw.url + '/api/orders', { 'x-user-id': 'vip-42', 'content-type': 'application/json' }, 'POST', '{"a":1}')
  t.equal(p.status, 502)
  t.equal(gw.logs.findLast((l) => l.msg === 'request')?.attempts, 2, 'POST went twice: a connection that never opened carried no byte of it')
})

t.test('a POST to a backend that dies mid-request is sent once and not retried', async (t) => {
  // a raw TCP backend that reads the request and resets the connection
  let requests = 0
  const dead = net.createServer((s) => { s.once('data', () => { requests++; s.resetAndDestroy() }) })
  dead.listen(0, '127.0.0.1')
  await once(dead, 'listening')
  t.teardown(() => dead.close())
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(`http://127.0.0.1:${(dead.address() as net.AddressInfo).port}`, fresh.url), t)
  const r = await get(gw.url + '/api/payments', { 'x-user-id': 'vip-42', 'content-type': 'application/json', 'idempotency-key': 'k1' }, 'POST', '{"orderId":"o1","amount":10}')
  t.equal(r.status, 502)
  t.equal(r.json?.error, 'DUALTRACK_ERR_UPSTREAM_RESET')
  // any second attempt would have been made (and counted by the backend) before this answer
  await waitFor(() => gw.logs.some((l) => l.msg === 'request' && l.method === 'POST' && l.status === 502), { what: 'the access line of the payment' })
  t.equal(requests, 1, 'the payment reached the backend exactly once')
  t.equal(fresh.seen.length, 0, 'and was never sent to the other backend')
  const g = await get(gw.url + '/api/orders', { 'x-user-id': 'vip-42' })
  t.equal(g.status, 502)
  t.equal(requests, 2, 'a GET reset after it was sent is not retried either')
})

t.test('headers: hop-by-hop stripped, x-forwarded-for appended, x-dualtrack-* dropped', async (t) => {
  const { legacy, gw } = await setup(t, { top: 'server: { trustedProxies: [127.0.0.0/8] }' })
  legacy.handler = (_req, res) => {
    res.writeHead(200, { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': 'no', 'keep-alive': 'timeout=5', 'x-kept': 'yes', 'content-type': 'text/plain' })
    res.end('ok')
  }
  const r = await rawGet(gw.url + '/api/orders', {
    'x-user-id': 'vip-42',
    connection: 'keep-alive, x-private',
    'x-private': 'drop me',
    'keep-alive': 'timeout=5',
    te: 'trailers',
    'x-dualtrack-backend': 'new',
    'x-dualtrack-shadow': '1',
    'x-forwarded-for': '203.0.113.7',
    'idempotency-key': 'abc-123',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  })
  const h = legacy.seen.at(-1)?.headers ?? {}
  t.equal(h['x-private'], undefined)
  t.equal(h['keep-alive'], undefined)
  t.equal(h.te, undefined)
  t.equal(h['x-dualtrack-backend'], undefined)
  t.equal(h['x-dualtrack-shadow'], undefined, 'a client cannot mark its own request as a dry run')
  t.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'appended behind a trusted proxy')
  t.equal(h['idempotency-key'], 'abc-123')
  t.equal(h.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
  t.equal(r.headers['x-secret-hop'], undefined)
  t.equal(r.headers['x-kept'], 'yes')
  t.equal(r.headers['x-dualtrack-backend'], 'legacy', 'the client-sent value did not decide anything')
})

t.test('x-forwarded-for from an untrusted client is replaced', async (t) => {
  const { legacy, gw } = await setup(t)
  await get(gw.url + '/api/orders', { 'x-user-id': 'vip-42', 'x-forwarded-for': '6.6.6.6' })
  t.equal(legacy.seen.at(-1)?.headers['x-forwarded-for'], '127.0.0.1')
})

t.test('a client abort cancels the upstream request and frees its socket', async (t) => {
  const { legacy, gw } = await setup(t)
  let upstreamClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { upstreamClosed = resolve })
  legacy.handler = (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('partial')
    res.on('close', () => upstreamClosed())
    void req
  }
  const ac = new AbortController()
  const res = await request(gw.url + '/api/orders', { headers: { 'x-user-id': 'vip-42' }, signal: ac.signal })
  t.equal(res.statusCode, 200)
  ac.abort()
  let isClosed = false
  void closed.then(() => { isClosed = true })
  await waitFor(() => isClosed, { what: 'the backend to see its connection close (the upstream socket freed)' })
  t.pass('the backend saw its connection close')
  const line = await waitFor(() => gw.logs.findLast((l) => l.msg === 'request'), { what: 'the access line of the aborted request' })
  t.equal(line.status, 499)
})

t.test('bad input on the data plane never gives a 500', async (t) => {
  const { gw } = await setup(t)
  const cases: [Record<string, string>, string][] = [
    [{ cookie: '=;;uid;===; uid' }, 'unkeyed'],
    [{ authorization: 'Bearer e30.!!!garbage!!!.x' }, 'unkeyed'],
    [{ authorization: 'Bearer ' + 'a'.repeat(9000) }, 'unkeyed'],
    [{ 'x-user-id': 'z'.repeat(10_240) }, 'unkeyed'],
    [{ 'x-user-id': 'z'.repeat(10_240), cookie: 'uid=vip-42' }, 'force']
  ]
  for (const [headers, reason] of cases) {
    const r = await get(gw.url + '/api/orders', headers)
    t.equal(r.status, 200, JSON.stringify(headers).slice(0, 60))
    t.equal(r.headers['x-dualtrack-reason'], reason)
  }
})

t.test('one access log line per request, without tokens', async (t) => {
  const { gw } = await setup(t)
  await get(gw.url + '/api/orders/9?token=secret', { 'x-user-id': 'vip-42', authorization: 'Bearer sekret-token', 'x-request-id': 'req-123' })
  const lines = gw.logs.filter((l) => l.msg === 'request')
  t.equal(lines.length, 1)
  const l = lines[0] as Record<string, unknown>
  t.match(l, { reqId: 'req-123', route: 'orders', method: 'GET', path: '/api/orders/9', backend: 'legacy', reason: 'force', status: 200 })
  t.type(l.durationMs, 'number')
  t.notMatch(JSON.stringify(gw.logs), /sekret|secret/)
  const r = await request(gw.url + '/api/orders', { headers: { 'x-user-id': 'vip-42' } })
  await r.body.dump()
  t.match(r.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a request id is made when the client sends none, and returned')
  t.equal(gw.logs.findLast((l) => l.msg === 'request')?.reqId, r.headers['x-request-id'])
})
