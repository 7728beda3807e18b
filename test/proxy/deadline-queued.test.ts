// a request that waited for a free backend connection past its deadline was answered 504: it must
// never be sent afterwards (a payment charged after its client was told it failed). The one
// connection is held by a request made on the same real undici Pool without a gateway deadline,
// so nothing frees it before the queued POST's deadline passes
import t from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startBackend } from '../helpers/backend.js'
import { waitFor } from '../helpers/wait.js'
import { createUpstream, forward, type ExchangeResult } from '../../src/proxy/index.js'

t.test('a POST answered 504 while queued for a connection never reaches the backend', async (t) => {
  const backend = await startBackend('legacy', t)
  let release: () => void = () => undefined
  const held = new Promise<void>((resolve) => { release = resolve })
  backend.handler = (req, res) => {
    const answer = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}') }
    if (req.url === '/slow') void held.then(answer)
    else answer()
  }
  const upstream = createUpstream('legacy', { url: backend.url, timeoutMs: 300, connectTimeoutMs: 1000, keepAliveTimeoutMs: 4000, connections: 1 })
  t.teardown(() => upstream.pool.close())
  // a real server whose handler forwards through the gateway's own exchange, on the shared pool
  const results: ExchangeResult[] = []
  const front = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => forward({
      upstream, method: req.method as string, path: req.url as string, headers: { 'content-type': 'application/json' },
      body: Buffer.concat(chunks), res, addHeaders: {}, backend: 'legacy', captureBytes: 0, onDone: (r) => results.push(r)
    }))
  })
  front.listen(0, '127.0.0.1')
  await once(front, 'listening')
  t.teardown(() => { front.closeAllConnections(); front.close() })
  const url = `http://127.0.0.1:${(front.address() as AddressInfo).port}`

  // the slow request takes the pool's one connection, with no deadline of its own
  const slow = upstream.pool.request({ origin: upstream.origin, path: '/slow', method: 'GET' })
  await waitFor(() => backend.seen.length > 0, { what: 'the slow request to hold the connection' })
  const pay = await request(url + '/pay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":1}' })
  t.equal(pay.statusCode, 504, 'the queued POST is answered 504 at its deadline')
  t.match(await pay.body.json(), { error: 'DUALTRACK_ERR_UPSTREAM_TIMEOUT', backend: 'legacy' })
  release()
  await (await slow).body.dump()
  // one connection, no pipelining: a POST still queued would be written before this GET
  const after = await request(url + '/after')
  t.equal(after.statusCode, 200)
  await after.body.dump()
  t.same(backend.seen.map((s) => `${s.method} ${s.url}`), ['GET /slow', 'GET /after'], 'the POST never left the gateway')
  t.equal(results[0]?.status, 504)
})
