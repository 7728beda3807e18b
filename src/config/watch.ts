// notice edits of the config file: an in-place write, a rename over it, or the symlink swap a
// Kubernetes ConfigMap volume does (..data -> ..2026_11_25...); fs.watch on the folder is fast,
// a stat poll is the backstop for the cases fs.watch misses (symlinks, some file systems)
import { watch, watchFile, unwatchFile, readFileSync, type FSWatcher } from 'node:fs'
import { createHash } from 'node:crypto'
import { dirname } from 'node:path'

export const DEFAULT_WATCH_DEBOUNCE_MS = 150
export const DEFAULT_WATCH_POLL_MS = 500

export interface ConfigWatcher { close(): void }

export function watchConfig (file: string, onChange: () => void, opts: { debounceMs?: number, pollMs?: number } = {}): ConfigWatcher {
  const debounceMs = opts.debounceMs ?? DEFAULT_WATCH_DEBOUNCE_MS
  let last = digest(file)
  let timer: NodeJS.Timeout | undefined
  const fire = () => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      const now = digest(file)
      // fires only when the bytes changed: touch, chmod and the folder's other files do not reload
      if (now === last || now === undefined) return
      last = now
      onChange()
    }, debounceMs)
    timer.unref()
  }
  let dirWatcher: FSWatcher | undefined
  try {
    dirWatcher = watch(dirname(file), { persistent: false }, fire)
    dirWatcher.on('error', () => { /* the poll below still runs */ })
  } catch { /* folder not watchable: the poll alone */ }
  watchFile(file, { interval: opts.pollMs ?? DEFAULT_WATCH_POLL_MS, persistent: false }, fire)
  return {
    close () {
      clearTimeout(timer)
      dirWatcher?.close()
      unwatchFile(file, fire)
    }
  }
}

function digest (file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return undefined
  }
}
