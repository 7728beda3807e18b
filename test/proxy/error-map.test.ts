// the one place failures of an exchange become client answers: each kind of failure, made by the
// real libraries' error classes where they exist, maps to its status, its metrics kind and the
// whole JSON body the client gets (code, message, backend; nothing internal)
import t from 'tap'
import { errors } from 'undici'
import { errorKind, isConnectFailure, mapUpstreamError } from '../../src/proxy/error-map.js'

const sys = (code: string) => Object.assign(new Error(`${code} 127.0.0.1:1`), { code })

/** what a client and the metrics see of a mapped error */
function seen (err: unknown, backend: 'legacy' | 'new' = 'legacy') {
  const m = mapUpstreamError(err, backend)
  return { status: m.status, kind: m.kind, body: JSON.parse(m.body) as unknown }
}

const TIMEOUT = (backend: string) => ({ status: 504, kind: 'timeout', body: { error: 'DUALTRACK_ERR_UPSTREAM_TIMEOUT', message: `the ${backend} system did not answer in time`, backend } })
const CONNECT = (backend: string) => ({ status: 502, kind: 'connect', body: { error: 'DUALTRACK_ERR_UPSTREAM_CONNECT', message: `could not connect to the ${backend} system`, backend } })
const RESET = (backend: string) => ({ status: 502, kind: 'reset', body: { error: 'DUALTRACK_ERR_UPSTREAM_RESET', message: `the ${backend} system closed the connection`, backend } })
const BAD = (backend: string) => ({ status: 502, kind: 'bad_response', body: { error: 'DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE', message: `the ${backend} system sent an invalid answer`, backend } })

t.test('timeouts: 504 DUALTRACK_ERR_UPSTREAM_TIMEOUT', async (t) => {
  for (const err of [new errors.HeadersTimeoutError(), new errors.BodyTimeoutError(), sys('ETIMEDOUT')]) {
    t.same(seen(err), TIMEOUT('legacy'), (err as { code: string }).code)
    t.same(seen(err, 'new'), TIMEOUT('new'), `${(err as { code: string }).code} on new`)
    t.equal(isConnectFailure(err), false, 'a timeout may have reached the backend: never retried as a connect failure')
  }
})

t.test('connect failures: 502 DUALTRACK_ERR_UPSTREAM_CONNECT, and the only ones safe to retry', async (t) => {
  const errs = [new errors.ConnectTimeoutError(), ...['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'].map(sys)]
  for (const err of errs) {
    t.same(seen(err), CONNECT('legacy'), (err as { code: string }).code)
    t.equal(isConnectFailure(err), true, `${(err as { code: string }).code}: nothing reached the backend`)
  }
})

t.test('resets: 502 DUALTRACK_ERR_UPSTREAM_RESET, never retried', async (t) => {
  const errs = [new errors.SocketError('other side closed'), new errors.ClientDestroyedError(), new errors.ClientClosedError(), sys('ECONNRESET'), sys('EPIPE')]
  for (const err of errs) {
    t.same(seen(err, 'new'), RESET('new'), (err as { code: string }).code)
    t.equal(isConnectFailure(err), false)
  }
})

t.test('an answer that breaks HTTP: 502 DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE', async (t) => {
  const parse = Object.assign(new Error('Parse Error: Invalid header value char'), { code: 'HPE_INVALID_HEADER_TOKEN' })
  for (const err of [parse, new errors.ResponseContentLengthMismatchError(), new errors.HeadersOverflowError()]) {
    t.same(seen(err), BAD('legacy'), (err as { code: string }).code)
    t.equal(errorKind(err), 'bad_response')
  }
})

t.test('nothing internal reaches the client: no stack, no address, no cause', async (t) => {
  const err = Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:8443'), { code: 'ECONNREFUSED', stack: 'at secret (/srv/app.js:1:1)', cause: new Error('db password wrong') })
  const body = mapUpstreamError(err, 'legacy').body
  t.notMatch(body, /10\.1\.2\.3|8443|secret|password|stack|cause/)
})

// issue 12 item 3 changes this: an error that is not the backend's is the gateway's own (500
// DUALTRACK_ERR_INTERNAL), never blamed on a backend. Until that lands the map still says
// bad_response; this records the target so the change shows up here.
t.test('an unknown error is the gateway\'s, not the backend\'s', { todo: 'issue 12 item 3 (src/proxy/error-map.ts)' }, async (t) => {
  const m = mapUpstreamError(new TypeError('cannot read properties of undefined'), 'new')
  t.same({ status: m.status, kind: m.kind, body: JSON.parse(m.body) as unknown }, { status: 500, kind: undefined, body: { error: 'DUALTRACK_ERR_INTERNAL', message: 'internal error', backend: 'new' } })
  t.equal(errorKind(new TypeError('x')), undefined)
  t.equal(errorKind(null), undefined)
})
