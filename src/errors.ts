// every error code of dualtrack, grouped by area; the README's errors table lists each one
// (test/errors/readme.test.ts keeps the two in step)
import createError from '@fastify/error'

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

// admin
export const DUALTRACK_ERR_UNAUTHORIZED = createError('DUALTRACK_ERR_UNAUTHORIZED', 'missing or unknown bearer token', 401)
export const DUALTRACK_ERR_FORBIDDEN = createError('DUALTRACK_ERR_FORBIDDEN', 'token %s has role viewer; this needs operator', 403)
export const DUALTRACK_ERR_BAD_REQUEST = createError('DUALTRACK_ERR_BAD_REQUEST', '%s', 400)
export const DUALTRACK_ERR_UNKNOWN_ROLLOUT = createError('DUALTRACK_ERR_UNKNOWN_ROLLOUT', 'unknown rollout %s', 404)
export const DUALTRACK_ERR_ADMIN_BODY_TOO_LARGE = createError('DUALTRACK_ERR_ADMIN_BODY_TOO_LARGE', 'admin request body is larger than 64 KiB', 413)
