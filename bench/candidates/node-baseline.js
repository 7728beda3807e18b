// the node baselines (bench/baselines/*.js): listen on port 0 and print {"port":N}
import { join } from 'node:path'
import { BENCH_DIR, ROOT_DIR } from '../lib/settings.js'
import { firstJsonLine, startProcess, waitForHttp } from '../lib/proc.js'

export function nodeBaseline (name, file) {
  return {
    name,
    requires: [],
    async start (ctx) {
      const env = {
        ...process.env,
        NODE_ENV: 'production',
        PORT: '0',
        ORIGIN_LEGACY: `http://127.0.0.1:${ctx.origin.legacy}`,
        ORIGIN_NEW: `http://127.0.0.1:${ctx.origin.new}`,
        SALT: 'bench',
        PERCENT: '50'
      }
      const proc = startProcess({ name, cmd: process.execPath, args: [join(BENCH_DIR, 'baselines', file)], cpu: ctx.settings.proxyCpu, cwd: ROOT_DIR, env, stdout: 'pipe' })
      try {
        const { port } = await firstJsonLine(proc, ctx.settings.startTimeoutMs)
        await waitForHttp(port, proc, ctx.settings.startTimeoutMs)
        return { url: `http://127.0.0.1:${port}`, pid: proc.pid, proc, command: proc.command, stop: () => proc.stop() }
      } catch (err) {
        await proc.stop()
        throw Object.assign(err, { stderr: proc.stderr })
      }
    }
  }
}

/** wrk straight at the legacy origin: the ceiling of this machine, no proxy process to measure */
export const direct = {
  name: 'direct',
  requires: [],
  async start (ctx) {
    return { url: `http://127.0.0.1:${ctx.origin.legacy}`, pid: null, command: '(none: wrk → origin)', stop: async () => {} }
  }
}
