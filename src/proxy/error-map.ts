// the one place failures of an exchange become client answers (reply-from's lib/request.js is the
// model): a backend's timeout -> 504; refused, reset, bad answer -> 502; a client's fault is the
// client's (413, 400) and anything else is the gateway's own (500 DUALTRACK_ERR_INTERNAL), never
// blamed on a backend. The client gets { error, message, backend } and nothing internal
import type { BackendName } from '../config/index.js'
import {
  DUALTRACK_ERR_BODY_TOO_LARGE, DUALTRACK_ERR_CLIENT_ABORT, DUALTRACK_ERR_DEADLINE, DUALTRACK_ERR_INTERNAL,
  DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE, DUALTRACK_ERR_UPSTREAM_CONNECT, DUALTRACK_ERR_UPSTREAM_RESET, DUALTRACK_ERR_UPSTREAM_TIMEOUT,
  type UpstreamErrorKind
} from '../errors.js'

export type { UpstreamErrorKind } from '../errors.js'

/** whose fault a failed exchange was: only `upstream` is counted against a backend (metrics, guard) */
export type Fault = 'upstream' | 'client' | 'internal'

export interface MappedError {
  readonly status: number
  readonly fault: Fault
  /** set when the backend is at fault */
  readonly kind: UpstreamErrorKind | undefined
  readonly body: string
}

// the code an error class stamps on its instances, read once at load
const codeOfClass = (E: new (...a: never[]) => { code: string }): string => new E().code

const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', codeOfClass(DUALTRACK_ERR_DEADLINE), 'ETIMEDOUT'])
const RESET_CODES = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'])
// the peer closed or reset the connection (not our pool closing, not an abort)
const SOCKET_CODES = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'])
// the backend's answer broke HTTP: a bad status line or header (llhttp's HPE_*), too many header
// bytes, a body shorter or longer than its Content-Length
const BAD_RESPONSE_CODES = new Set(['UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE', 'UND_ERR_INFO'])
// the client's request was at fault: too large, or shorter than the Content-Length it announced
const CLIENT_CODES = new Map<string, number>([
  [codeOfClass(DUALTRACK_ERR_BODY_TOO_LARGE), 413],
  ['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 400],
  [codeOfClass(DUALTRACK_ERR_CLIENT_ABORT), 499]
])

const codeOf = (err: unknown): string => (err as { code?: string } | null)?.code ?? ''

/** the backend's failure kind, or undefined when the backend is not at fault */
export function errorKind (err: unknown): UpstreamErrorKind | undefined {
  const code = codeOf(err)
  if (CONNECT_CODES.has(code)) return 'connect'
  if (TIMEOUT_CODES.has(code)) return 'timeout'
  if (RESET_CODES.has(code)) return 'reset'
  if (BAD_RESPONSE_CODES.has(code) || code.startsWith('HPE_') || (err as Error | null)?.name === 'HTTPParserError') return 'bad_response'
  return undefined
}

/** a connect failure: nothing reached the backend, so an idempotent request may go again */
export function isConnectFailure (err: unknown): boolean {
  return CONNECT_CODES.has(codeOf(err))
}

/** the connection closed or reset (no timeout, no abort): with no byte written, a write may go again */
export function isSocketReset (err: unknown): boolean {
  return SOCKET_CODES.has(codeOf(err))
}

export function mapUpstreamError (err: unknown, backend: BackendName): MappedError {
  const kind = errorKind(err)
  if (kind !== undefined) {
    const e = kind === 'timeout'
      ? new DUALTRACK_ERR_UPSTREAM_TIMEOUT(backend)
      : kind === 'connect'
        ? new DUALTRACK_ERR_UPSTREAM_CONNECT(backend)
        : kind === 'reset'
          ? new DUALTRACK_ERR_UPSTREAM_RESET(backend)
          : new DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE(backend)
    return { status: e.statusCode as number, fault: 'upstream', kind, body: JSON.stringify({ error: e.code, message: e.message, backend }) }
  }
  const clientStatus = CLIENT_CODES.get(codeOf(err))
  if (clientStatus !== undefined) {
    const e = err as { code: string, message: string }
    return { status: clientStatus, fault: 'client', kind: undefined, body: JSON.stringify({ error: e.code, message: e.message, backend }) }
  }
  const e = new DUALTRACK_ERR_INTERNAL()
  return { status: 500, fault: 'internal', kind: undefined, body: JSON.stringify({ error: e.code, message: e.message, backend }) }
}
