// the gateway's logger: pino options (redaction of tokens and cookies) and the buffered destination
import pino from 'pino'

/** never logged: tokens, Authorization headers, cookies */
export const LOG_REDACT = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', 'token', '*.token', 'authorization'
]

/** bytes of log lines buffered before one write(2): one syscall per ~20 access lines, not per line */
export const LOG_BUFFER_BYTES = 4096
export const LOG_FLUSH_MS = 1000

export function loggerOptions (level = process.env.LOG_LEVEL ?? 'info') {
  return { level, redact: { paths: LOG_REDACT, censor: '[redacted]' } }
}

export function createLogger (pretty = false) {
  const opts = loggerOptions()
  if (pretty) return pino({ ...opts, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } })
  // a synchronous write per access line was ~5% of the CPU of a proxied request (bench/README.md);
  // buffered lines are flushed on exit by pino, and at least every 4 KiB
  const dest = pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES })
  // a quiet gateway's lines still show within a second
  setInterval(() => { try { dest.flush() } catch { /* not open yet or already closed */ } }, LOG_FLUSH_MS).unref()
  return pino(opts, dest)
}
