// header rewriting (RFC 9110 §7.6.1) as pure functions: the whole header set that goes upstream
// and back, for trusted and untrusted peers, IPv4, IPv6 and IPv4-mapped addresses
import t from 'tap'
import { compileTrustedProxies, upstreamRequestHeaders, clientResponseHeaders } from '../../src/proxy/headers.js'

const NONE = compileTrustedProxies([])
const LB = compileTrustedProxies(['10.0.0.0/8', '192.168.1.7', 'fd00::/8'])

t.test('trusted proxies: CIDRs and single addresses, v4, v6 and v4-mapped', async (t) => {
  t.same(['10.1.2.3', '::ffff:10.200.0.1', '192.168.1.7', '192.168.1.8', 'fd00::1', 'fe80::1', '11.0.0.1', undefined].map((a) => LB.has(a)),
    [true, true, true, false, true, false, false, false])
  t.same(['10.1.2.3', '127.0.0.1', undefined].map((a) => NONE.has(a)), [false, false, false], 'none configured: nobody is trusted')
})

t.test('upstream request: hop-by-hop and Connection-named headers dropped, x-dualtrack-* never passed', async (t) => {
  const out = upstreamRequestHeaders({
    host: 'shop.example',
    connection: 'keep-alive, X-Private, , upgrade',
    'keep-alive': 'timeout=5',
    'proxy-authorization': 'Basic Zm9v',
    te: 'trailers',
    trailer: 'x-sum',
    'transfer-encoding': 'chunked',
    upgrade: 'websocket',
    expect: '100-continue',
    'x-private': 'drop me',
    'x-dualtrack-backend': 'new',
    'x-dualtrack-shadow': '1',
    'x-user-id': 'u1',
    'idempotency-key': 'k-1',
    cookie: 'uid=1',
    'set-cookie': ['a=1', 'b=2'],
    'content-type': 'application/json'
  }, '203.0.113.9', NONE, 'http')
  t.same(out, {
    'x-user-id': 'u1',
    'idempotency-key': 'k-1',
    cookie: 'uid=1',
    'set-cookie': ['a=1', 'b=2'],
    'content-type': 'application/json',
    'x-forwarded-for': '203.0.113.9',
    'x-forwarded-host': 'shop.example',
    'x-forwarded-proto': 'http'
  })
})

t.test('x-forwarded-*: replaced for an untrusted peer, appended and kept behind a trusted one', async (t) => {
  const inbound = { host: 'gw.internal', 'x-forwarded-for': '6.6.6.6, 7.7.7.7', 'x-forwarded-host': 'shop.example', 'x-forwarded-proto': 'https' }
  t.same(upstreamRequestHeaders(inbound, '198.51.100.4', LB, 'http'), {
    'x-forwarded-for': '198.51.100.4',
    'x-forwarded-host': 'gw.internal',
    'x-forwarded-proto': 'http'
  }, 'an untrusted client cannot claim an address, a host or a scheme')
  t.same(upstreamRequestHeaders(inbound, '::ffff:10.0.0.5', LB, 'http'), {
    'x-forwarded-for': '6.6.6.6, 7.7.7.7, 10.0.0.5',
    'x-forwarded-host': 'shop.example',
    'x-forwarded-proto': 'https'
  }, 'behind the load balancer: its chain plus its own address (v4-mapped shown as v4)')
  t.same(upstreamRequestHeaders({ 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'] }, 'fd00::7', LB, 'https'), {
    'x-forwarded-for': '1.1.1.1, 2.2.2.2, fd00::7',
    'x-forwarded-proto': 'https'
  }, 'a repeated header joins; no host: no x-forwarded-host')
  t.same(upstreamRequestHeaders({}, undefined, LB, 'http'), { 'x-forwarded-for': '', 'x-forwarded-proto': 'http' }, 'no peer address (a closed socket)')
})

t.test('client answer: hop-by-hop and Connection-named headers dropped, the rest kept as sent', async (t) => {
  t.same(clientResponseHeaders({
    connection: 'keep-alive, x-secret-hop',
    'keep-alive': 'timeout=5',
    'x-secret-hop': 'no',
    'transfer-encoding': 'chunked',
    'proxy-authenticate': 'Basic',
    host: 'kept.example',
    'content-type': 'application/json',
    'set-cookie': ['a=1', 'b=2'],
    'x-missing': undefined,
    location: '/api/orders/NW-1'
  }), {
    host: 'kept.example',
    'content-type': 'application/json',
    'set-cookie': ['a=1', 'b=2'],
    location: '/api/orders/NW-1'
  })
  t.same(clientResponseHeaders({ connection: ['close', 'X-A'], 'x-a': '1', 'x-b': '2' }), { 'x-b': '2' }, 'Connection as an array of values')
})
