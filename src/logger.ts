// the gateway's logger: pino options (redaction of tokens and cookies) and the buffered destination
import pino from 'pino'
import { prettyFactory } from 'pino-pretty'
import { LogDestination } from './log-destination.js'

/** never logged: tokens, Authorization headers, cookies */
export const LOG_REDACT = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'token', '*.token', 'authorization'
]

export { LOG_BUFFER_BYTES, LOG_FLUSH_MS } from './log-destination.js'

export function loggerOptions (level = process.env.LOG_LEVEL ?? 'info') {
  return { level, redact: { paths: LOG_REDACT, censor: '[redacted]' } }
}

export function createLogger (pretty = false) {
  const opts = loggerOptions()
  // a synchronous write per access line was ~5% of the CPU of a proxied request (bench/README.md):
  // lines are buffered, and dropped, never retried, once stdout is gone (a hung-up terminal)
  const dest = new LogDestination(1)
  if (!pretty) return pino(opts, dest)
  // pretty lines are made in this thread: a transport's worker would retry a dead terminal on its own
  const format = prettyFactory({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', colorize: true })
  return pino(opts, { write: (line: string) => dest.write(format(line)), flush: (cb?: () => void) => dest.flush(cb), flushSync: () => dest.flushSync() } as unknown as pino.DestinationStream)
}
