// a real redis-server per test file. Redis cannot listen on port 0, so a random high port is
// tried and another one picked on EADDRINUSE; the same port is kept across stop() and start() so
// clients reconnect to the same URL, as they would after a real Redis restart
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestRedis {
  readonly url: string
  readonly port: number
  stop (): Promise<void>
  start (): Promise<void>
}

/** TLS on the port (the plain port closed), with this certificate and key; clients need not present one */
export interface RedisTlsFiles { readonly cert: string, readonly key: string }

interface LaunchOptions { readonly persist: boolean, readonly tls?: RedisTlsFiles | undefined, readonly password?: string | undefined }

function launch (port: number, dir: string, o: LaunchOptions): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    // persist: an append-only file synced on every write, so a killed redis-server restarts with its data
    const durability = o.persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']
    const listen = o.tls === undefined
      ? ['--port', String(port)]
      : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', o.tls.cert, '--tls-key-file', o.tls.key, '--tls-auth-clients', 'no']
    const auth = o.password === undefined ? [] : ['--requirepass', o.password]
    const p = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', ...durability, '--dir', dir, '--protected-mode', 'no', ...auth], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`redis-server did not start: ${out}`)) }, 30_000)
    p.on('error', (err) => { clearTimeout(timer); reject(new Error(`redis-server is required for this test (apt-get install redis-server): ${err.message}`)) })
    p.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      if (out.includes('Ready to accept connections')) { clearTimeout(timer); resolve(p) }
      if (out.includes('Address already in use')) { clearTimeout(timer); p.kill('SIGKILL'); reject(Object.assign(new Error('in use'), { code: 'EADDRINUSE' })) }
    })
    p.on('exit', (code) => { clearTimeout(timer); reject(Object.assign(new Error(`redis-server exited ${code}: ${out}`), { code: out.includes('Address already in use') ? 'EADDRINUSE' : 'EXIT' })) })
  })
}

export async function startRedis (t: { teardown(fn: () => unknown): void }, opts: { persist?: boolean, tls?: RedisTlsFiles, password?: string } = {}): Promise<TestRedis> {
  const o: LaunchOptions = { persist: opts.persist === true, tls: opts.tls, password: opts.password }
  const dir = mkdtempSync(join(tmpdir(), 'dualtrack-redis-'))
  let proc: ChildProcess | undefined
  let port = 0
  for (let i = 0; i < 20 && proc === undefined; i++) {
    port = 20_000 + Math.floor(Math.random() * 40_000)
    try {
      proc = await launch(port, dir, o)
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE') throw err
    }
  }
  if (proc === undefined) throw new Error('no free port for redis-server after 20 tries')
  const stop = async () => {
    const p = proc
    if (p === undefined || p.exitCode !== null) return
    const exited = new Promise((resolve) => p.once('exit', resolve))
    p.kill('SIGKILL')
    await exited
    proc = undefined
  }
  const r: TestRedis = {
    url: `${opts.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    port,
    stop,
    async start () { if (proc === undefined) proc = await launch(port, dir, o) }
  }
  t.teardown(stop)
  return r
}
