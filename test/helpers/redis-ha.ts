// real Redis topologies on loopback for the failover tests: a master, a replica and three
// sentinels; or a three-master Cluster. Every process is started here and killed by its PID.
// Redis cannot listen on port 0: a random high port is tried, another on EADDRINUSE
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { waitFor } from './wait.js'

const run = promisify(execFile)

export interface RedisProc {
  readonly port: number
  readonly dir: string
  readonly proc: ChildProcess
  /** SIGKILL, and wait for the exit */
  kill (): Promise<void>
}

function launchOnce (bin: string, args: (port: number) => string[], port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args(port), { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${bin} did not start: ${out}`)) }, 15_000)
    p.on('error', (err) => { clearTimeout(timer); reject(new Error(`${bin} is required for this test (apt-get install redis-server redis-sentinel): ${err.message}`)) })
    const onData = (c: Buffer) => {
      out += c.toString()
      if (out.includes('Address already in use')) { clearTimeout(timer); p.kill('SIGKILL'); reject(Object.assign(new Error('in use'), { code: 'EADDRINUSE' })) }
      // a server says it is ready; a sentinel says which master it monitors
      else if (/Ready to accept connections|\+monitor master/.test(out)) { clearTimeout(timer); resolve(p) }
    }
    p.stdout?.on('data', onData)
    p.stderr?.on('data', onData)
    p.on('exit', (code) => { clearTimeout(timer); reject(Object.assign(new Error(`${bin} exited ${code}: ${out}`), { code: out.includes('Address already in use') ? 'EADDRINUSE' : 'EXIT' })) })
  })
}

async function launch (t: { teardown(fn: () => unknown): void }, bin: string, args: (port: number, dir: string) => string[]): Promise<RedisProc> {
  const dir = mkdtempSync(join(tmpdir(), 'dualtrack-ha-'))
  for (let i = 0; i < 20; i++) {
    // ports below 55535: a Cluster node also listens on port + 10000
    const port = 20_000 + Math.floor(Math.random() * 35_000)
    try {
      const proc = await launchOnce(bin, (p) => args(p, dir), port)
      const kill = async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return
        const exited = new Promise((resolve) => proc.once('exit', resolve))
        proc.kill('SIGKILL')
        await exited
      }
      t.teardown(kill)
      return { port, dir, proc, kill }
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE') throw err
    }
  }
  throw new Error(`no free port for ${bin} after 20 tries`)
}

const serverArgs = (port: number, dir: string, password: string | undefined, extra: string[] = []) => [
  '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no',
  ...(password !== undefined ? ['--requirepass', password, '--masterauth', password] : []),
  ...extra
]

export interface SentinelSetup {
  readonly name: string
  master: RedisProc
  readonly replica: RedisProc
  readonly sentinels: RedisProc[]
  /** "127.0.0.1:PORT" of each sentinel, for state.redis.sentinels */
  readonly sentinelAddrs: string[]
  /** the port the sentinels name as master now */
  masterPort (): Promise<number>
}

/** a master, a replica of it and three sentinels watching them (quorum 2, down after 1 s) */
export async function startSentinelSetup (t: { teardown(fn: () => unknown): void }, opts: { password?: string, name?: string } = {}): Promise<SentinelSetup> {
  const name = opts.name ?? 'dualtrack'
  const pw = opts.password
  const master = await launch(t, 'redis-server', (port, dir) => serverArgs(port, dir, pw))
  const replica = await launch(t, 'redis-server', (port, dir) => serverArgs(port, dir, pw, ['--replicaof', '127.0.0.1', String(master.port)]))
  const sentinels: RedisProc[] = []
  for (let i = 0; i < 3; i++) {
    sentinels.push(await launch(t, 'redis-sentinel', (port, dir) => {
      // a sentinel rewrites its config file: one per sentinel, in its own folder
      const file = join(dir, 'sentinel.conf')
      writeFileSync(file, [
        `port ${port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        ...(pw !== undefined ? [`sentinel auth-pass ${name} ${pw}`] : [])
      ].join('\n') + '\n')
      return [file]
    }))
  }
  const ask = async (port: number, ...args: string[]): Promise<unknown> => {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: true, retryStrategy: () => null })
    c.on('error', () => {})
    try {
      await c.connect()
      return await c.call('SENTINEL', ...args)
    } finally {
      c.disconnect()
    }
  }
  // a failover needs every sentinel to know the replica and the two other sentinels (hello
  // messages every 2 s), and the replica in sync
  await waitFor(async () => {
    for (const s of sentinels) {
      const others = await ask(s.port, 'sentinels', name) as unknown[]
      const replicas = await ask(s.port, 'replicas', name) as string[][]
      const up = replicas.some((r) => { const i = r.indexOf('flags'); return i >= 0 && r[i + 1] === 'slave' })
      if (others.length < 2 || !up) return false
    }
    return true
  }, { what: 'three sentinels that know each other and the replica', timeoutMs: 30_000, intervalMs: 200 })
  const setup: SentinelSetup = {
    name,
    master,
    replica,
    sentinels,
    sentinelAddrs: sentinels.map((s) => `127.0.0.1:${s.port}`),
    async masterPort () {
      for (const s of sentinels) {
        try {
          const a = await ask(s.port, 'get-master-addr-by-name', name) as [string, string]
          return Number(a[1])
        } catch { /* ask the next */ }
      }
      throw new Error('no sentinel answered')
    }
  }
  return setup
}

export interface ClusterSetup {
  readonly nodes: RedisProc[]
  /** "127.0.0.1:PORT" of each node, for state.redis.cluster */
  readonly addrs: string[]
}

/**
 * three masters (with `replicas` replicas each, none by default), slots spread by redis-cli
 * --cluster create. full coverage off: with a master gone, the others keep serving their slots
 * (the gateway's state slot may be among them)
 */
export async function startCluster (t: { teardown(fn: () => unknown): void }, masters = 3, opts: { replicas?: number } = {}): Promise<ClusterSetup> {
  const replicas = opts.replicas ?? 0
  const nodes: RedisProc[] = []
  for (let i = 0; i < masters * (1 + replicas); i++) {
    nodes.push(await launch(t, 'redis-server', (port, dir) => serverArgs(port, dir, undefined, [
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '1000',
      '--cluster-require-full-coverage', 'no'
    ])))
  }
  const addrs = nodes.map((n) => `127.0.0.1:${n.port}`)
  await run('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 })
  await waitFor(async () => {
    for (const n of nodes) {
      const { stdout } = await run('redis-cli', ['-p', String(n.port), 'cluster', 'info'])
      if (!stdout.includes('cluster_state:ok')) return false
      // every node knows every other (a failover needs the masters' votes)
      if (!stdout.includes(`cluster_known_nodes:${nodes.length}`)) return false
      // a replica takes over only once it has synced with its master
      const { stdout: repl } = await run('redis-cli', ['-p', String(n.port), 'info', 'replication'])
      if (repl.includes('role:slave') && !repl.includes('master_link_status:up')) return false
    }
    return true
  }, { what: 'cluster_state:ok on every node, replicas in sync', timeoutMs: 60_000, intervalMs: 200 })
  return { nodes, addrs }
}

export interface ClusterNode {
  readonly id: string
  readonly port: number
  readonly role: 'master' | 'replica'
  /** a replica's master (its id) */
  readonly masterId: string | undefined
  /** flagged fail (or pfail) by the node asked */
  readonly failing: boolean
  /** slot ranges served, inclusive */
  readonly slots: readonly (readonly [number, number])[]
}

/** the cluster as the node on port sees it (CLUSTER NODES) */
export async function clusterNodes (port: number): Promise<ClusterNode[]> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'nodes'], { timeout: 5000 })
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const [id, addr, flags, master, , , , , ...slots] = l.trim().split(' ') as string[]
    const f = (flags ?? '').split(',')
    return {
      id: id as string,
      port: Number(/:(\d+)@/.exec(addr ?? '')?.[1]),
      role: f.includes('master') ? 'master' : 'replica',
      masterId: master === '-' ? undefined : master,
      failing: f.includes('fail') || f.includes('fail?'),
      // importing/migrating entries ("[...]") are not served slots
      slots: slots.filter((s) => !s.startsWith('[')).map((s) => { const [a, b] = s.split('-'); return [Number(a), Number(b ?? a)] as const })
    }
  })
}

/** the slot of a key (CLUSTER KEYSLOT) */
export async function keySlot (port: number, key: string): Promise<number> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'keyslot', key], { timeout: 5000 })
  return Number(stdout.trim())
}

/** the number of keys matching pattern on one node */
export async function keysOn (port: number, pattern: string): Promise<number> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null })
  c.on('error', () => {})
  try {
    await c.connect()
    let n = 0
    let cursor = '0'
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      n += keys.length
    } while (cursor !== '0')
    return n
  } finally {
    c.disconnect()
  }
}
