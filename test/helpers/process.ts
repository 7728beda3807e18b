// a gateway as a real child process (`node bin/dualtrack.js start`), for tests of signals,
// restarts and several replicas
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

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
  const deadline = Date.now() + 40_000
  let urls: { gateway: string, admin: string } | undefined
  while (urls === undefined) {
    const m = /"gateway":"([^"]+)","admin":"([^"]+)"/.exec(out)
    if (m) urls = { gateway: m[1] as string, admin: m[2] as string }
    else if (proc.exitCode !== null) throw new Error(`gateway exited ${proc.exitCode}: ${out}`)
    else if (Date.now() > deadline) throw new Error(`gateway did not start: ${out}`)
    else await new Promise((resolve) => setTimeout(resolve, 25))
  }
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
