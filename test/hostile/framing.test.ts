// request framing a hostile client might use to smuggle a request past the gateway (RFC 9112 §6.3,
// §5.2, §2.2): each is refused before any backend sees it, and the connection is closed, so a
// dependency upgrade that loosens node's parser fails here first
import t from 'tap'
import { startBackend } from '../helpers/backend.js'
import { startGatewayFromYaml, basicYaml } from '../helpers/gateway.js'
import { rawRequest, portOf } from '../helpers/raw.js'

const legacy = await startBackend('legacy', t)
const fresh = await startBackend('new', t)
const gw = await startGatewayFromYaml(basicYaml(legacy.url, fresh.url), t)
const port = portOf(gw.url)

const CASES: { name: string, bytes: string, status: number }[] = [
  {
    name: 'Content-Length and Transfer-Encoding together (CL.TE smuggling)',
    bytes: 'POST /api/orders HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/orders/smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
    status: 400
  },
  {
    name: 'two Content-Length headers that differ',
    bytes: 'POST /api/orders HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc',
    status: 400
  },
  {
    name: 'a Content-Length list',
    bytes: 'POST /api/orders HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc',
    status: 400
  },
  {
    name: 'a Transfer-Encoding that does not end in chunked',
    bytes: 'POST /api/orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    status: 400
  },
  {
    name: 'an unknown Transfer-Encoding (xchunked)',
    bytes: 'POST /api/orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    status: 400
  },
  {
    name: 'a Transfer-Encoding with a space before the colon',
    bytes: 'POST /api/orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    status: 400
  },
  {
    name: 'an obs-fold continuation line',
    bytes: 'GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nX-User-Id: alice\r\n  qa-user-1\r\n\r\n',
    status: 400
  },
  {
    name: 'bare LF line ends',
    bytes: 'GET /api/orders/1 HTTP/1.1\nHost: a\nX-User-Id: alice\n\n',
    status: 400
  },
  {
    name: 'a NUL in a header value',
    bytes: 'GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nX-User-Id: ali\x00ce\r\n\r\n',
    status: 400
  },
  {
    name: 'a bare CR in a header value',
    bytes: 'GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nX-User-Id: ali\rce\r\n\r\n',
    status: 400
  },
  {
    name: 'a header block over 16 KiB',
    bytes: `GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    status: 431
  }
]

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const before = legacy.seen.length + fresh.seen.length
    const answer = await rawRequest(port, c.bytes)
    t.equal(answer.status, c.status, `answered ${c.status} (got: ${JSON.stringify(answer.text.slice(0, 80))})`)
    t.ok(answer.closed, 'the connection is closed')
    t.notMatch(answer.text, /smuggled/, 'no second request was read from the body')
    t.equal(legacy.seen.length + fresh.seen.length, before, 'no backend saw anything')
  })
}

t.test('a well-formed request on the same gateway still passes (the cases above fail for their framing alone)', async (t) => {
  const answer = await rawRequest(port, 'GET /api/orders/1 HTTP/1.1\r\nHost: a\r\nX-User-Id: alice\r\nConnection: close\r\n\r\n')
  t.equal(answer.status, 200)
  t.match(answer.text, /x-dualtrack-backend: (legacy|new)/)
})
