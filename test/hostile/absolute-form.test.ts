// absolute-form request targets (RFC 9112 §3.2.2): routed on their path and forwarded in origin form
// when the authority is the Host the client named; any other authority is refused with 400 and never
// reaches a backend (before the fix: route "unmatched", and the backend got the foreign URL)
import t from 'tap'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { rawRequest, portOf } from '../helpers/raw.js'

const legacy = await startBackend('legacy', t)
const fresh = await startBackend('new', t)
const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url), t)
const port = portOf(gw.url)
const seen = () => [...legacy.seen, ...fresh.seen]

t.test('a foreign authority is refused with 400, the connection closed, and no backend sees it', async (t) => {
  const before = seen().length
  const answer = await rawRequest(port, 'GET http://evil.invalid:9/api/orders/1 HTTP/1.1\r\nHost: gateway.test\r\nX-User-Id: qa-user-1\r\n\r\n')
  t.equal(answer.status, 400)
  t.ok(answer.closed, 'connection closed')
  t.match(answer.text, /"error":"DUALTRACK_ERR_FOREIGN_TARGET"/)
  t.equal(seen().length, before, 'no backend saw the request')
})

t.test('userinfo, another scheme, the asterisk form and a missing Host are refused too', async (t) => {
  const before = seen().length
  for (const head of [
    'GET http://gateway.test@evil.invalid/api/orders/1 HTTP/1.1\r\nHost: gateway.test',
    'GET ftp://gateway.test/api/orders/1 HTTP/1.1\r\nHost: gateway.test',
    'OPTIONS * HTTP/1.1\r\nHost: gateway.test'
  ]) {
    const answer = await rawRequest(port, `${head}\r\n\r\n`)
    t.equal(answer.status, 400, head.split('\r\n')[0] ?? head)
  }
  t.equal(seen().length, before, 'no backend saw any of them')
})

t.test('its own authority: routed on the path, the backend gets the origin form', async (t) => {
  const answer = await rawRequest(port, 'GET http://Gateway.Test:80/api/orders/7?x=1 HTTP/1.1\r\nHost: gateway.test\r\nX-User-Id: qa-user-1\r\nConnection: close\r\n\r\n')
  t.equal(answer.status, 200)
  t.match(answer.text, /x-dualtrack-backend: new/, 'qa-user-1 is forced to new: the orders route matched')
  t.match(answer.text, /x-dualtrack-reason: force/)
  const last = fresh.seen.at(-1)
  t.equal(last?.url, '/api/orders/7?x=1', 'the backend got the origin form')
  t.equal(last?.headers['x-forwarded-host'], 'gateway.test')
  t.equal(last?.headers.host, new URL(fresh.url).host, 'Host is the backend\'s own')
})

t.test('a query with no path becomes /?query', async (t) => {
  const answer = await rawRequest(port, 'GET http://gateway.test?a=1 HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n')
  t.equal(answer.status, 200)
  t.equal(legacy.seen.at(-1)?.url, '/?a=1')
})
