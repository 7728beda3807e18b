// a client's fault is the client's (DESIGN.md §7): a body over bodyLimit, chunked or with a
// Content-Length, is answered 413 with the connection closed, counted as a client error, never as an
// upstream error of the backend it was routed to, and never fed to the guard (before: a chunked one
// was 502 DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE, counted against the backend)
import t from 'tap'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { rawRequest, portOf } from '../helpers/raw.js'

const legacy = await startBackend('legacy', t)
const fresh = await startBackend('new', t)
const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url, {
  top: 'server: { bodyLimit: 1024 }',
  rollout: '    guard: { window: 60s, minRequests: 1, maxErrorRate: 0.5 }'
}), t)
const port = portOf(gw.url)

function chunked (bytes: number): string {
  let out = 'POST /api/payments HTTP/1.1\r\nHost: a\r\nX-User-Id: vip-42\r\nTransfer-Encoding: chunked\r\n\r\n'
  for (let left = bytes; left > 0; left -= 256) {
    const n = Math.min(256, left)
    out += `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n`
  }
  return out + '0\r\n\r\n'
}

async function counters () {
  const text = await gw.app.metrics.text()
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0)
  return {
    upstreamErrors: sum(/^dualtrack_upstream_errors_total\{[^}]*\} (\d+)/gm),
    client413: sum(/^dualtrack_requests_total\{[^}]*code="413"[^}]*\} (\d+)/gm)
  }
}

t.test('a chunked body over bodyLimit: 413, connection closed, a client error, not the backend\'s', async (t) => {
  const before = await counters()
  const a = await rawRequest(port, chunked(4096))
  t.equal(a.status, 413, a.text.split('\r\n')[0] ?? '')
  t.ok(a.closed, 'connection closed')
  t.match(a.text, /"error":"DUALTRACK_ERR_BODY_TOO_LARGE"/)
  t.match(a.text, /larger than 1024 bytes/)
  const after = await counters()
  t.equal(after.upstreamErrors, before.upstreamErrors, 'no upstream error counted')
  t.equal(after.client413, before.client413 + 1, 'counted as a 413')
  const line = gw.logs.findLast((l) => l.msg === 'request')
  t.equal(line?.status, 413)
  t.equal(line?.upstreamError, undefined)
})

t.test('a Content-Length over bodyLimit: the same, and no backend sees it', async (t) => {
  const before = await counters()
  const seen = legacy.seen.length
  const a = await rawRequest(port, `POST /api/payments HTTP/1.1\r\nHost: a\r\nX-User-Id: vip-42\r\nContent-Length: 4096\r\n\r\n${'x'.repeat(4096)}`)
  t.equal(a.status, 413)
  t.ok(a.closed)
  const after = await counters()
  t.equal(after.upstreamErrors, before.upstreamErrors)
  t.equal(after.client413, before.client413 + 1, 'counted as a 413 (it was not counted at all before)')
  t.equal(legacy.seen.length, seen)
})

t.test('many over-limit bodies never move the guard', async (t) => {
  for (let i = 0; i < 20; i++) await rawRequest(port, chunked(2048))
  // judge now, so the view holds what the guard counted (not what it counted a tick ago)
  await gw.app.guardian.tick()
  const v = gw.app.guardian.verdict('checkout')
  t.ok(v, 'the guard has judged the rollout')
  t.equal(v?.backends.legacy.requests, 0, 'the guard saw none of them (legacy has 0 requests in its window)')
  const text = await gw.app.metrics.text()
  t.notMatch(text, /dualtrack_upstream_errors_total\{[^}]*\} [1-9]/, 'still no upstream error')
  const state = gw.app.state.doc.rollouts.checkout
  t.equal(state?.rollback, null, 'the guard did not roll back')
})

t.test('a chunked body under the limit still passes whole', async (t) => {
  const a = await rawRequest(port, chunked(900).replace('Transfer-Encoding: chunked', 'Transfer-Encoding: chunked\r\nConnection: close'))
  t.equal(a.status, 200)
  t.equal(legacy.seen.at(-1)?.body.length, 900)
})
