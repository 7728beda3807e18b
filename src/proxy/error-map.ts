// the one place upstream failures become client answers (reply-from's lib/request.js is the model):
// timeout -> 504; refused, reset, bad answer -> 502; the client gets { error, message, backend }
// and nothing internal (no stack, no address)
import type { BackendName } from '../config/index.js'
import {
  DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE, DUALTRACK_ERR_UPSTREAM_CONNECT, DUALTRACK_ERR_UPSTREAM_RESET, DUALTRACK_ERR_UPSTREAM_TIMEOUT
} from '../errors.js'

/** the `kind` label of dualtrack_upstream_errors_total */
export type UpstreamErrorKind = 'timeout' | 'connect' | 'reset' | 'bad_response'

export interface MappedError {
  readonly status: number
  readonly kind: UpstreamErrorKind
  readonly body: string
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'DUALTRACK_DEADLINE', 'ETIMEDOUT'])
const RESET_CODES = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'])

export function errorKind (err: unknown): UpstreamErrorKind {
  const code = (err as { code?: string } | null)?.code ?? ''
  if (CONNECT_CODES.has(code)) return 'connect'
  if (TIMEOUT_CODES.has(code)) return 'timeout'
  if (RESET_CODES.has(code)) return 'reset'
  return 'bad_response'
}

/** a connect failure: nothing reached the backend, so an idempotent request may go again */
export function isConnectFailure (err: unknown): boolean {
  return CONNECT_CODES.has((err as { code?: string } | null)?.code ?? '')
}

export function mapUpstreamError (err: unknown, backend: BackendName): MappedError {
  const kind = errorKind(err)
  const e = kind === 'timeout'
    ? new DUALTRACK_ERR_UPSTREAM_TIMEOUT(backend)
    : kind === 'connect'
      ? new DUALTRACK_ERR_UPSTREAM_CONNECT(backend)
      : kind === 'reset'
        ? new DUALTRACK_ERR_UPSTREAM_RESET(backend)
        : new DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE(backend)
  return { status: e.statusCode as number, kind, body: JSON.stringify({ error: e.code, message: e.message, backend }) }
}
