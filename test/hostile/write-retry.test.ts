// a write goes again only when it provably never left (DESIGN.md §7, envoy's reset-before-request):
// undici writes a streamed request's head with its first body chunk, so a keep-alive connection that
// the backend closes while the gateway still waits for the client's body carried no byte of it. Such a
// write is sent once more on a new connection to the same backend; one that had left is answered 502
import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { portOf } from '../helpers/raw.js'
import { waitFor } from '../helpers/wait.js'

/** a backend that answers 201 and closes every connection `closeAfterMs` after each answer */
async function closingBackend (t: Test, closeAfterMs: number) {
  const b = { bodies: [] as string[], connections: 0, closed: 0, server: undefined as unknown as http.Server }
  b.server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      b.bodies.push(body)
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ got: body }))
      res.on('finish', () => setTimeout(() => req.socket.end(), closeAfterMs))
    })
  })
  b.server.keepAliveTimeout = 60_000
  b.server.on('connection', (s: net.Socket) => { b.connections++; s.on('close', () => { b.closed++ }) })
  b.server.listen(0, '127.0.0.1')
  await once(b.server, 'listening')
  t.teardown(() => { b.server.closeAllConnections(); b.server.close() })
  return { ...b, get self () { return b }, url: `http://127.0.0.1:${(b.server.address() as AddressInfo).port}` }
}

/** a client that sends a POST's head now and its body when told; resolves with the raw answer */
function slowPost (port: number, body: string) {
  const s = net.connect(port, '127.0.0.1')
  let text = ''
  s.on('data', (c: Buffer) => { text += c.toString('latin1') })
  s.on('error', () => {})
  const closed = once(s, 'close')
  s.write(`POST /api/payments HTTP/1.1\r\nHost: a\r\nX-User-Id: vip-42\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`)
  return {
    sendBody: () => s.write(body),
    answer: async () => { await closed; return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text } }
  }
}

t.test('a POST whose keep-alive connection closes before a byte of it was written goes again, once, and arrives once', async (t) => {
  const backend = await closingBackend(t, 150)
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(backend.url, fresh.url), t)
  const pool = gw.app.dataPlane.upstreams.legacy.pool
  const port = portOf(gw.url)
  const N = 10
  for (let k = 1; k <= N; k++) {
    const p = slowPost(port, `{"payment":${k}}`)
    // the gateway has handed the request to a connection: undici waits for its first body chunk
    await waitFor(() => pool.stats.running === 1, { what: `payment ${k} dispatched` })
    // the backend closes the connection the previous answer left open (not a byte of payment k on it)
    if (k > 1) await waitFor(() => backend.self.closed >= k - 1, { what: `the backend closed connection ${k - 1}` })
    p.sendBody()
    const a = await p.answer()
    t.equal(a.status, 201, `payment ${k} answered 201 (got ${a.text.split('\r\n')[0]})`)
  }
  t.same(backend.self.bodies, Array.from({ length: N }, (_, i) => `{"payment":${i + 1}}`), 'each payment reached the backend exactly once, whole')
  t.equal(fresh.seen.length, 0, 'and never the other backend')
  const retried = gw.logs.filter((l) => l.msg === 'request' && l.attempts === 2).length
  t.comment(`retried ${retried} of ${N} payments (a keep-alive connection closed under each but the first)`)
  t.ok(retried >= 1, 'payments that met a closing connection were retried')
  t.ok(gw.logs.filter((l) => l.msg === 'request').every((l) => l.upstreamError === undefined && Number(l.attempts ?? 1) <= 2), 'no upstream error, never more than two attempts')
  const text = await gw.app.metrics.text()
  t.notMatch(text, /dualtrack_upstream_errors_total\{[^}]*\} [1-9]/, 'no upstream error counted')
})

t.test('a POST that did leave is never sent again: the backend read it, then the connection broke', async (t) => {
  // reads the whole request, then resets without answering: the payment may have been taken
  let requests = 0
  const dead = net.createServer((s) => { s.on('data', (d: Buffer) => { if (d.includes('payment')) { requests++; s.resetAndDestroy() } }) })
  dead.listen(0, '127.0.0.1')
  await once(dead, 'listening')
  t.teardown(() => dead.close())
  const fresh = await startBackend('new', t)
  const gw = await startGatewayFromYaml(basicYaml(`http://127.0.0.1:${(dead.address() as AddressInfo).port}`, fresh.url), t)
  const p = slowPost(portOf(gw.url), '{"payment":1}')
  await waitFor(() => gw.app.dataPlane.upstreams.legacy.pool.stats.running === 1, { what: 'the payment dispatched' })
  p.sendBody()
  const a = await p.answer()
  t.equal(a.status, 502)
  t.match(a.text, /DUALTRACK_ERR_UPSTREAM_RESET/)
  t.equal(requests, 1, 'sent exactly once')
  t.equal(gw.logs.findLast((l) => l.msg === 'request')?.attempts, undefined, 'one attempt')
})
