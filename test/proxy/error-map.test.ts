// the one place failures of an exchange become client answers: each kind of failure, made by the
// real libraries' error classes where they exist, maps to its status, its metrics kind and the
// whole JSON body the client gets (code, message, backend; nothing internal)
import t from 'tap'
import { errors } from 'undici'
import { errorKind, isConnectFailure, mapUpstreamError } from '../../src/proxy/error-map.js'
import { DUALTRACK_ERR_BODY_TOO_LARGE, DUALTRACK_ERR_CLIENT_ABORT, DUALTRACK_ERR_DEADLINE } from '../../src/errors.js'

const sys = (code: string) => Object.assign(new Error(`${code} 127.0.0.1:1`), { code })

/** what a client and the metrics see of a mapped error */
function seen (err: unknown, backend: 'legacy' | 'new' = 'legacy') {
  const m = mapUpstreamError(err, backend)
  return { status: m.status, fault: m.fault, kind: m.kind, body: JSON.parse(m.body) as unknown }
}

const TIMEOUT = (backend: string) => ({ status: 504, fault: 'upstream', kind: 'timeout', body: { error: 'DUALTRACK_ERR_UPSTREAM_TIMEOUT', message: `the ${backend} system did not answer in time`, backend } })
const CONNECT = (backend: string) => ({ status: 502, fault: 'upstream', kind: 'connect', body: { error: 'DUALTRACK_ERR_UPSTREAM_CONNECT', message: `could not connect to the ${backend} system`, backend } })
const RESET = (backend: string) => ({ status: 502, fault: 'upstream', kind: 'reset', body: { error: 'DUALTRACK_ERR_UPSTREAM_RESET', message: `the ${backend} system closed the connection`, backend } })
const BAD = (backend: string) => ({ status: 502, fault: 'upstream', kind: 'bad_response', body: { error: 'DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE', message: `the ${backend} system sent an invalid answer`, backend } })

t.test('timeouts: 504 DUALTRACK_ERR_UPSTREAM_TIMEOUT', async (t) => {
  for (const err of [new errors.HeadersTimeoutError(), new errors.BodyTimeoutError(), new DUALTRACK_ERR_DEADLINE(2000), sys('ETIMEDOUT')]) {
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

t.test('a client\'s fault is the client\'s: its status and its own code, never a backend\'s kind', async (t) => {
  t.same(seen(new DUALTRACK_ERR_BODY_TOO_LARGE(1000)), { status: 413, fault: 'client', kind: undefined, body: { error: 'DUALTRACK_ERR_BODY_TOO_LARGE', message: 'request body is larger than 1000 bytes', backend: 'legacy' } })
  t.same(seen(new errors.RequestContentLengthMismatchError()), { status: 400, fault: 'client', kind: undefined, body: { error: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', message: 'Request body length does not match content-length header', backend: 'legacy' } })
  t.same(seen(new DUALTRACK_ERR_CLIENT_ABORT(), 'new'), { status: 499, fault: 'client', kind: undefined, body: { error: 'DUALTRACK_ERR_CLIENT_ABORT', message: 'client went away', backend: 'new' } })
  t.equal(errorKind(new DUALTRACK_ERR_BODY_TOO_LARGE(1000)), undefined, 'not counted against the backend')
})

t.test('an unknown error is the gateway\'s (500 DUALTRACK_ERR_INTERNAL), never blamed on a backend', async (t) => {
  t.same(seen(new TypeError('cannot read properties of undefined'), 'new'), { status: 500, fault: 'internal', kind: undefined, body: { error: 'DUALTRACK_ERR_INTERNAL', message: 'internal error', backend: 'new' } })
  t.same(seen(null), { status: 500, fault: 'internal', kind: undefined, body: { error: 'DUALTRACK_ERR_INTERNAL', message: 'internal error', backend: 'legacy' } })
  t.same([errorKind(new TypeError('x')), errorKind(null), errorKind(sys('EWHATEVER'))], [undefined, undefined, undefined])
})
