// dualtrack itself, started from its built CLI with a generated YAML config (DESIGN.md §2):
//   node bin/dualtrack.js start --config <tmp>/gateway.yaml
// each mode is a small delta on one base config
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, writeFile, rm, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { stringify } from 'yaml'
import { ROOT_DIR } from '../lib/settings.js'
import { freePort, randomHighPort } from '../lib/ports.js'
import { startProcess, waitForHttp, httpGet } from '../lib/proc.js'
import { redisCounters } from '../lib/redis.js'

export const CLI = join(ROOT_DIR, 'bin', 'dualtrack.js')

/**
 * the V8 flags the build is deployed with: NODE_OPTIONS of its own deploy/k8s/deployment.yaml (next
 * to its bin/), so each build (dualtrack-baseline too) runs as it ships; BENCH_GATEWAY_NODE_OPTIONS
 * overrides ('' for none)
 */
export function deployedNodeOptions (cli) {
  if (process.env.BENCH_GATEWAY_NODE_OPTIONS !== undefined) return process.env.BENCH_GATEWAY_NODE_OPTIONS
  try {
    const text = readFileSync(join(dirname(cli), '..', 'deploy', 'k8s', 'deployment.yaml'), 'utf8')
    const m = /name: NODE_OPTIONS\s*\n\s*value: "([^"]*)"/.exec(text)
    return m ? m[1] : ''
  } catch {
    return ''
  }
}
const TOKEN = 'bench-operator-token-0123456789'

/** the config every mode starts from: 50% of users on new, keyed by x-user-id */
export function baseConfig ({ port, adminPort, legacy, next, tmp }) {
  return {
    server: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: adminPort, tokens: [{ name: 'bench', token: TOKEN, role: 'operator' }] },
    backends: {
      legacy: { url: `http://127.0.0.1:${legacy}` },
      new: { url: `http://127.0.0.1:${next}` }
    },
    state: { store: 'file', file: join(tmp, 'state.json') },
    rollouts: {
      checkout: { percent: 50, salt: 'bench', cohortKey: ['header:x-user-id'] }
    },
    routes: [{ name: 'api', match: { prefix: '/' }, rollout: 'checkout' }],
    default: 'legacy'
  }
}

/** mode → what it changes on the base config; `needs` names the services it starts first */
export const MODES = {
  dualtrack: { apply: () => {} },
  // the same config served by another build of dualtrack (BENCH_BASELINE_CLI=/path/to/bin/dualtrack.js
  // of a built checkout of an earlier commit): a refactor's cost, measured in the same run
  'dualtrack-baseline': { cli: () => process.env.BENCH_BASELINE_CLI, apply: () => {} },
  // dualtrack-shadow served by the BENCH_BASELINE_CLI build: what a change bought the shadow path
  'dualtrack-baseline-shadow': {
    cli: () => process.env.BENCH_BASELINE_CLI,
    copies: (scenario) => scenario.method === 'GET',
    apply: (c) => { c.routes[0].shadow = { percent: 100, methods: ['GET'] } }
  },
  'dualtrack-shadow': {
    // every GET copied to the other backend and compared
    copies: (scenario) => scenario.method === 'GET',
    apply: (c) => { c.routes[0].shadow = { percent: 100, methods: ['GET'] } }
  },
  'dualtrack-redis': {
    needs: ['redis'],
    apply: (c, svc) => { c.state = { store: 'redis', redis: { url: svc.redisUrl, prefix: 'dualtrack-bench:' } } }
  },
  // V8's default heap sizes instead of the deployment's NODE_OPTIONS: what the heap flags buy in RSS and cost in CPU
  'dualtrack-heap-default': { env: { NODE_OPTIONS: '' }, apply: () => {} },
  // request metrics off (DUALTRACK_METRICS=off): dualtrack vs this is what recording costs
  'dualtrack-no-metrics': { env: { DUALTRACK_METRICS: 'off' }, apply: () => {} },
  // affinity lookups on the Redis store: every GET names a random order from a pool of
  // BENCH_AFFINITY_IDS (10,000); none has an owner, so a lookup is a Redis read (one key of its turn's MGET) unless the same id
  // was asked in the last second (the gateway's negative cache). Compare with dualtrack-redis in
  // the same run; the measured mix is in the results file (counters.redis.keyspace_misses.perRequest)
  'dualtrack-redis-affinity': {
    needs: ['redis'],
    apply: (c, svc) => {
      c.state = { store: 'redis', redis: { url: svc.redisUrl, prefix: 'dualtrack-bench:' } }
      c.rollouts.checkout.affinity = { learn: ['json:$.orderId', 'header:location'], lookup: ['path:/api/orders/:orderId', 'query:orderId'], ttl: '1h' }
    }
  },
  // the two Redis modes served by the BENCH_BASELINE_CLI build: what a change bought the lookup path
  'dualtrack-baseline-redis': {
    cli: () => process.env.BENCH_BASELINE_CLI,
    needs: ['redis'],
    apply: (c, svc) => MODES['dualtrack-redis'].apply(c, svc)
  },
  'dualtrack-baseline-redis-affinity': {
    cli: () => process.env.BENCH_BASELINE_CLI,
    needs: ['redis'],
    apply: (c, svc) => MODES['dualtrack-redis-affinity'].apply(c, svc)
  },
  // server.workers: 2 on both cores (the load generator and the origin compete for core 1)
  'dualtrack-2workers': { cpu: '0,1', apply: (c) => { c.server.workers = 2 } },
  'dualtrack-affinity': {
    // GET /api/orders/<id> looks the order up; a POST answer naming an orderId records its owner
    apply: (c) => {
      c.rollouts.checkout.affinity = { learn: ['json:$.orderId', 'header:location'], lookup: ['path:/api/orders/:orderId', 'query:orderId'], ttl: '1h' }
    }
  }
}

export function configFor (mode, ctx) {
  const c = baseConfig(ctx)
  MODES[mode].apply(c, ctx)
  return c
}

/** redis-server on a random port above 20000 (redis cannot bind port 0), retried on EADDRINUSE */
async function startRedis (tmp, ctx) {
  let last
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await randomHighPort()
    const proc = startProcess({
      name: 'redis-server',
      cmd: ctx.tools.redis,
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp, '--logfile', join(tmp, 'redis.log')],
      cpu: ctx.settings.loadCpu
    })
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline && proc.running) {
      const log = await readFile(join(tmp, 'redis.log'), 'utf8').catch(() => '')
      if (/Ready to accept connections/.test(log)) return { proc, port, url: `redis://127.0.0.1:${port}` }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const log = await readFile(join(tmp, 'redis.log'), 'utf8').catch(() => '')
    last = new Error(`redis-server did not start on port ${port}: ${(log + proc.stderr).trim().split('\n').slice(-3).join(' | ')}`)
    await proc.stop()
    if (!/Address already in use|EADDRINUSE/i.test(log + proc.stderr)) break
  }
  throw last
}

const WATCHED = /^(dualtrack_routing_decisions_total|dualtrack_shadow_total|dualtrack_state_store_up|dualtrack_upstream_errors_total|dualtrack_affinity_total)\b/

/** the few gateway series that show a mode really did what it is named after */
export async function scrapeMetrics (adminPort) {
  try {
    const r = await httpGet(adminPort, '/metrics', { authorization: `Bearer ${TOKEN}` }, 2_000, 4_000_000)
    if (r.status !== 200) return { error: `GET /metrics answered ${r.status}` }
    const out = {}
    for (const line of r.body.split('\n')) {
      if (!WATCHED.test(line)) continue
      const sp = line.lastIndexOf(' ')
      out[line.slice(0, sp)] = Number(line.slice(sp + 1))
    }
    return out
  } catch (err) {
    return { error: err.message }
  }
}

export function dualtrackCandidate (mode) {
  return {
    name: mode,
    requires: MODES[mode].needs ?? [],
    copies: MODES[mode].copies,
    async start (ctx) {
      const cli = MODES[mode].cli ? MODES[mode].cli() : CLI
      if (cli === undefined) throw new Error('BENCH_BASELINE_CLI is not set: candidate skipped')
      if (!existsSync(cli)) throw new Error(`${cli} does not exist yet (the gateway is not built): candidate skipped`)
      const tmp = await mkdtemp(join(tmpdir(), `dualtrack-bench-${mode}-`))
      const services = []
      const cleanup = async () => {
        for (const s of services.reverse()) await s.stop()
        await rm(tmp, { recursive: true, force: true })
      }
      try {
        let redisUrl
        let redisPort
        if ((MODES[mode].needs ?? []).includes('redis')) {
          const r = await startRedis(tmp, ctx)
          services.push(r.proc)
          redisUrl = r.url
          redisPort = r.port
        }
        let lastErr
        for (let attempt = 0; attempt < 3; attempt++) {
          // admin.port 0 is not allowed here: both ports are picked free, then passed in
          const port = await freePort()
          const adminPort = await freePort()
          const config = configFor(mode, { port, adminPort, legacy: ctx.origin.legacy, next: ctx.origin.new, tmp, redisUrl })
          const file = join(tmp, 'gateway.yaml')
          await writeFile(file, `# generated by bench/candidates/dualtrack.js (mode ${mode})\n${stringify(config)}`)
          // access logs at info level, as shipped: to a file in the temp dir, or to /dev/null
          const log = ctx.settings.gatewayLog === 'null' || ctx.settings.gatewayLog === '/dev/null' ? '/dev/null' : join(tmp, 'gateway.log')
          const nodeOptions = MODES[mode].env?.NODE_OPTIONS ?? deployedNodeOptions(cli)
          const proc = startProcess({
            name: mode,
            cmd: process.execPath,
            args: [cli, 'start', '--config', file],
            cpu: MODES[mode].cpu ?? ctx.settings.proxyCpu,
            cwd: tmp,
            env: { ...process.env, NODE_ENV: 'production', NODE_OPTIONS: nodeOptions, ...(MODES[mode].env ?? {}) },
            stdout: log
          })
          try {
            await waitForHttp(port, proc, ctx.settings.startTimeoutMs)
            // a 5xx here means the gateway listens but cannot proxy: not worth loading
            const probe = await httpGet(port, '/api/orders/o-probe', { 'x-user-id': 'u-probe' })
            if (probe.status !== 200) throw new Error(`probe GET answered ${probe.status}: ${probe.body.slice(0, 300)}`)
            services.push(proc)
            return {
              url: `http://127.0.0.1:${port}`,
              pid: proc.pid,
              proc,
              logFile: log,
              command: `NODE_OPTIONS='${nodeOptions}' ${proc.command} (cwd ${tmp})`,
              config,
              probe: { backend: probe.headers['x-dualtrack-backend'], reason: probe.headers['x-dualtrack-reason'] },
              // what the gateway itself counted: decisions by reason, shadow results, store health
              snapshot: () => scrapeMetrics(adminPort),
              // read before and after each measured run: affinity lookups as the gateway counted
              // them, and the commands redis served (a redis mode that sends none is not one)
              counters: async () => {
                const out = {}
                const m = await scrapeMetrics(adminPort)
                if (m.error) return { error: m.error }
                out.affinity = Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('dualtrack_affinity_total')).map(([k, v]) => [/result="([^"]+)"/.exec(k)?.[1] ?? k, v]))
                if (redisPort) {
                  try { out.redis = await redisCounters(redisPort) } catch (err) { return { error: `redis INFO: ${err.message}` } }
                }
                return out
              },
              stop: cleanup
            }
          } catch (err) {
            const out = log === '/dev/null' ? '' : (await readFile(log, 'utf8').catch(() => '')).slice(-4_000)
            lastErr = Object.assign(err, { stderr: proc.stderr, stdout: out })
            await proc.stop()
            if (!/EADDRINUSE/.test(proc.stderr + out)) break
          }
        }
        throw lastErr
      } catch (err) {
        await cleanup()
        throw err
      }
    }
  }
}
