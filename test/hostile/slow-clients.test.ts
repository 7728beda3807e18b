// slow clients and connection floods: a client that dribbles its request head is cut within its
// deadline plus a second (node looked for them every 30 s by default, so 300 such clients held their
// connections for 15 s and more with requestTimeoutMs 5000), and each listener holds at most
// maxConnections, so descriptors cannot run out
import t from 'tap'
import net from 'node:net'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { rawRequest, portOf } from '../helpers/raw.js'
import { waitFor } from '../helpers/wait.js'

const legacy = await startBackend('legacy', t)
const fresh = await startBackend('new', t)

t.test('clients that send their head a byte every 300 ms are cut at headersTimeoutMs, not 30 s later', async (t) => {
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: 'server: { requestTimeoutMs: 5000, headersTimeoutMs: 2000 }' }), t)
  const port = portOf(gw.url)
  const head = 'GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nX-User-Id: alice\r\nX-Padding: ' + 'p'.repeat(200)
  const N = 100
  const clients = Array.from({ length: N }, () => {
    const c = { socket: net.connect(port, '127.0.0.1'), openedAt: performance.now(), closedAt: 0, text: '' }
    let i = 0
    const timer = setInterval(() => {
      if (i < head.length && !c.socket.destroyed) c.socket.write(head[i++] as string)
    }, 300)
    c.socket.on('data', (d: Buffer) => { c.text += d.toString('latin1') })
    c.socket.on('error', () => {})
    c.socket.on('close', () => { c.closedAt = performance.now(); clearInterval(timer) })
    t.teardown(() => { clearInterval(timer); c.socket.destroy() })
    return c
  })
  // the unfixed gateway first looked at 30 s: waiting less than that tells the two apart
  await waitFor(() => clients.every((c) => c.closedAt > 0), { timeoutMs: 20_000, what: `all ${N} slow clients cut` })
  const held = clients.map((c) => c.closedAt - c.openedAt).sort((a, b) => a - b)
  t.comment(`held for ${Math.round(held[0] as number)}..${Math.round(held.at(-1) as number)} ms (headersTimeoutMs 2000, checked every 500 ms)`)
  t.ok(clients.every((c) => /^HTTP\/1\.1 408/.test(c.text) || c.text === ''), 'each got 408 or nothing before the close')
  t.equal(legacy.seen.length + fresh.seen.length, 0, 'no backend saw any of them')
})

t.test('a listener holds at most maxConnections: the next one is closed at once, and served again once one goes', async (t) => {
  const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, { top: 'server: { maxConnections: 4 }\nadmin: { maxConnections: 3 }' }), t)
  const port = portOf(gw.url)
  t.equal(gw.app.admin.server.maxConnections, 3, 'the admin listener has its own cap')
  // four keep-alive connections, each answered once and left open
  const held: net.Socket[] = []
  for (let i = 0; i < 4; i++) {
    const s = net.connect(port, '127.0.0.1')
    t.teardown(() => s.destroy())
    s.on('error', () => {})
    let text = ''
    s.on('data', (d: Buffer) => { text += d.toString('latin1') })
    s.write('GET /api/orders/1 HTTP/1.1\r\nHost: a\r\n\r\n')
    await waitFor(() => /\r\n\r\n/.test(text), { what: `connection ${i + 1} answered` })
    held.push(s)
  }
  const refused = await rawRequest(port, 'GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.equal(refused.status, 0, 'the fifth connection got no answer')
  t.ok(refused.closed, 'and was closed')
  held[0]?.destroy()
  const again = await waitFor(async () => {
    const a = await rawRequest(port, 'GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    return a.status === 200 ? a : undefined
  }, { what: 'a new connection served once one of the four closed' })
  t.equal(again.status, 200)
})
