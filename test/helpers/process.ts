// a gateway as a real child process (`node bin/dualtrack.js start`), for tests of signals,
// restarts and several replicas
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { waitFor } from './wait.js'

export interface GatewayProcess {
  readonly proc: ChildProcess
  readonly url: string
  readonly adminUrl: string
  readonly output: () => string
  /** SIGTERM and wait for the exit code */
  stop (signal?: NodeJS.Signals): Promise<number | null>
}

export async function spawnGateway (configPath: string, t: { teardown(fn: () => unknown): void }, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  const proc = spawn(process.execPath, ['bin/dualtrack.js', 'start', '--config', configPath], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  proc.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  proc.stderr?.on('data', (c: Buffer) => { out += c.toString() })
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL') })
  // generous: CI machines are shared, and a cluster starts a primary and its workers
  const started = await waitFor(() => {
    const m = /"gateway":"([^"]+)","admin":"([^"]+)"/.exec(out)
    if (m) return { gateway: m[1] as string, admin: m[2] as string }
    // a process that died will never print the line: stop waiting at once
    if (proc.exitCode !== null || proc.signalCode !== null) return { exited: proc.exitCode ?? proc.signalCode }
    throw new Error(`not listening yet; output so far: ${out.slice(-2000)}`)
  }, { timeoutMs: 40_000, what: 'the gateway\'s "dualtrack listening" line' })
  if ('exited' in started) throw new Error(`gateway exited ${String(started.exited)}: ${out}`)
  const urls = started
  return {
    proc,
    url: urls.gateway,
    adminUrl: urls.admin,
    output: () => out,
    async stop (signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode
      const exited = once(proc, 'exit')
      proc.kill(signal)
      const [code] = await exited as [number | null]
      return code
    }
  }
}
