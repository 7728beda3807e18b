// tokens from files (a mounted Kubernetes Secret) are re-read when a file changes, so a rotation
// needs no restart; a new token that is unreadable or weak is refused and the previous ones stay
import type { FastifyBaseLogger } from 'fastify'
import { watchConfig, readTokenFile, tokenWeakness, type AdminToken, type ConfigWatcher } from '../config/index.js'

export interface TokenWatch { stop (): void }

const NO_WATCH: TokenWatch = { stop: () => undefined }

export function watchTokenFiles (tokens: readonly AdminToken[], onChange: (tokens: AdminToken[]) => void, log: FastifyBaseLogger, opts: { pollMs?: number } = {}): TokenWatch {
  const files = [...new Set(tokens.flatMap((t) => (t.tokenFile === undefined ? [] : [t.tokenFile])))]
  if (files.length === 0) return NO_WATCH
  const reread = () => {
    const next: AdminToken[] = []
    for (const t of tokens) {
      if (t.tokenFile === undefined) { next.push(t); continue }
      let token: string
      try {
        token = readTokenFile(t.tokenFile)
      } catch (err) {
        log.error({ file: t.tokenFile, error: (err as Error).message }, 'token file unreadable: the previous tokens stay')
        return
      }
      const weak = tokenWeakness(token)
      if (weak !== undefined) {
        log.error({ file: t.tokenFile, name: t.name }, `new token refused: it ${weak}; the previous tokens stay`)
        return
      }
      next.push({ ...t, token })
    }
    log.info({ files }, 'admin tokens re-read')
    onChange(next)
  }
  const watchers: ConfigWatcher[] = files.map((f) => watchConfig(f, reread, opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}))
  return { stop: () => { for (const w of watchers) w.close() } }
}
