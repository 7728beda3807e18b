// every error code of dualtrack, grouped by area; the README's errors table lists each one
// (test/errors/readme.test.ts keeps the two in step)
import createError from '@fastify/error'

/** the `kind` label of dualtrack_upstream_errors_total: what went wrong with a backend */
export type UpstreamErrorKind = 'timeout' | 'connect' | 'reset' | 'bad_response'

// config
export const DUALTRACK_ERR_CONFIG_NOT_FOUND = createError('DUALTRACK_ERR_CONFIG_NOT_FOUND', 'config file %s: %s', 500)
export const DUALTRACK_ERR_CONFIG_SYNTAX = createError('DUALTRACK_ERR_CONFIG_SYNTAX', '%s', 500)
export const DUALTRACK_ERR_CONFIG_INVALID = createError('DUALTRACK_ERR_CONFIG_INVALID', '%s', 500)
export const DUALTRACK_ERR_CONFIG_ENV = createError('DUALTRACK_ERR_CONFIG_ENV', '%s', 500)

// proxy: what a client of the data plane sees
export const DUALTRACK_ERR_UPSTREAM_TIMEOUT = createError('DUALTRACK_ERR_UPSTREAM_TIMEOUT', 'the %s system did not answer in time', 504)
export const DUALTRACK_ERR_UPSTREAM_CONNECT = createError('DUALTRACK_ERR_UPSTREAM_CONNECT', 'could not connect to the %s system', 502)
export const DUALTRACK_ERR_UPSTREAM_RESET = createError('DUALTRACK_ERR_UPSTREAM_RESET', 'the %s system closed the connection', 502)
export const DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE = createError('DUALTRACK_ERR_UPSTREAM_BAD_RESPONSE', 'the %s system sent an invalid answer', 502)
export const DUALTRACK_ERR_BODY_TOO_LARGE = createError('DUALTRACK_ERR_BODY_TOO_LARGE', 'request body is larger than %d bytes', 413)
export const DUALTRACK_ERR_FOREIGN_TARGET = createError('DUALTRACK_ERR_FOREIGN_TARGET', 'the request target names another host than Host: this gateway is not a forward proxy', 400)

// admin
export const DUALTRACK_ERR_UNAUTHORIZED = createError('DUALTRACK_ERR_UNAUTHORIZED', 'missing or unknown bearer token', 401)
export const DUALTRACK_ERR_FORBIDDEN = createError('DUALTRACK_ERR_FORBIDDEN', 'token %s has role viewer; this needs operator', 403)
export const DUALTRACK_ERR_BAD_REQUEST = createError('DUALTRACK_ERR_BAD_REQUEST', '%s', 400)
export const DUALTRACK_ERR_UNKNOWN_ROLLOUT = createError('DUALTRACK_ERR_UNKNOWN_ROLLOUT', 'unknown rollout %s', 404)
export const DUALTRACK_ERR_UNKNOWN_ORDER = createError('DUALTRACK_ERR_UNKNOWN_ORDER', 'no known owner for order %s', 404)
export const DUALTRACK_ERR_ADMIN_BODY_TOO_LARGE = createError('DUALTRACK_ERR_ADMIN_BODY_TOO_LARGE', 'admin request body is larger than 64 KiB', 413)

// the gateway's own faults: never blamed on a backend (DESIGN.md §7)
export const DUALTRACK_ERR_INTERNAL = createError('DUALTRACK_ERR_INTERNAL', 'internal error', 500)
// the overall per-request deadline (backends.*.timeoutMs) passed: mapped to 504 like a backend timeout
export const DUALTRACK_ERR_DEADLINE = createError('DUALTRACK_ERR_DEADLINE', 'no complete answer within %d ms', 504)
// the client went away: logged and counted as 499, never answered and never a backend's fault
export const DUALTRACK_ERR_CLIENT_ABORT = createError('DUALTRACK_ERR_CLIENT_ABORT', 'client went away', 499)

// shadow copies: counted as result="error", never seen by the client
export const DUALTRACK_ERR_SHADOW_TIMEOUT = createError('DUALTRACK_ERR_SHADOW_TIMEOUT', 'no complete shadow answer within %d ms', 504)
export const DUALTRACK_ERR_SHADOW_TOO_LARGE = createError('DUALTRACK_ERR_SHADOW_TOO_LARGE', 'shadow answer over maxBodyBytes (%d bytes)', 502)

// state stores and the worker channel: a change that fails is kept and retried, a lookup falls through
export const DUALTRACK_ERR_STORE_CONFLICT = createError('DUALTRACK_ERR_STORE_CONFLICT', 'state changed concurrently too often (%d tries)', 503)
export const DUALTRACK_ERR_IPC = createError('DUALTRACK_ERR_IPC', '%s', 503)

// the ownership ledger (GET /admin/affinity)
export const DUALTRACK_ERR_STORE_UNAVAILABLE = createError('DUALTRACK_ERR_STORE_UNAVAILABLE', 'the state store cannot answer: %s', 503)
