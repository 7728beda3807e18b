// one JSON line per proxied request, written by the proxy itself (cheaper than onResponse hooks)
import type { FastifyBaseLogger } from 'fastify'
import { pathOf } from '../routing/index.js'
import type { RequestReport } from './handler.js'

export type AccessLog = (report: RequestReport, request: { id: string, raw: { url?: string | undefined } }, seconds: number) => void

const NO_ACCESS_LOG: AccessLog = () => undefined

/** the access log, or a no-op when the level leaves `info` out (chosen once, not per request) */
export function createAccessLog (log: FastifyBaseLogger): AccessLog {
  const enabled = (log as unknown as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') ?? true
  if (!enabled) return NO_ACCESS_LOG
  return (r, request, seconds) => {
    log.info({
      reqId: request.id,
      route: r.route?.name ?? 'unmatched',
      method: r.method,
      // the path only: query strings can carry ids and tokens
      path: pathOf(request.raw.url ?? ''),
      backend: r.decision.backend,
      reason: r.decision.reason,
      ...(r.decision.segment !== undefined ? { segment: r.decision.segment } : {}),
      status: r.result.status,
      durationMs: Math.round(seconds * 1e6) / 1e3,
      ...(r.result.errorKind ? { upstreamError: r.result.errorKind } : {}),
      ...(r.result.attempts > 1 ? { attempts: r.result.attempts } : {})
    }, 'request')
  }
}
