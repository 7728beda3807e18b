// `dualtrack demo`: the sample legacy and new systems plus the gateway, all in one process
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDemoBackend, type DemoBackend } from './backend.js'
import { startGateway, type Running } from '../main.js'

export { startDemoBackend, type DemoBackend } from './backend.js'

/** the package's own folder (src/demo and dist/demo are both two deep) */
const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** the demo's config, shipped in the package: found from any working directory */
export const DEMO_CONFIG = join(PACKAGE_ROOT, 'config', 'demo.yaml')

export interface DemoTokens { readonly operator: string, readonly viewer: string }
export interface Demo { legacy: DemoBackend, new: DemoBackend, gateway: Running, tokens: DemoTokens, stop(): Promise<void> }

export async function startDemo (opts: { configPath?: string, pretty?: boolean, signals?: boolean, gatewayPort?: number, adminPort?: number, cwd?: string, stateDir?: string } = {}): Promise<Demo> {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  const env = { ...process.env, DEMO_LEGACY_URL: legacy.url, DEMO_NEW_URL: fresh.url }
  // two tokens made for this run and printed: the console's sign-in takes either
  const tokens: DemoTokens = { operator: randomBytes(16).toString('hex'), viewer: randomBytes(16).toString('hex') }
  const cwd = opts.cwd ?? process.cwd()
  // outside the repository there is no var/: the demo's state goes to the temp folder
  // (a bench passes a fresh stateDir: a state left rolled back by an earlier run would show in its pictures)
  const stateDir = opts.stateDir ?? (existsSync(join(cwd, 'package.json')) && resolve(cwd) === resolve(PACKAGE_ROOT) ? join(PACKAGE_ROOT, 'var') : join(tmpdir(), 'dualtrack-demo'))
  const gateway = await startGateway({
    configPath: opts.configPath === undefined ? DEMO_CONFIG : resolve(cwd, opts.configPath),
    env,
    pretty: opts.pretty ?? false,
    signals: opts.signals ?? false,
    overrides: (c) => ({
      ...c,
      server: { ...c.server, port: opts.gatewayPort ?? c.server.port },
      admin: {
        ...c.admin,
        port: opts.adminPort ?? c.admin.port,
        tokens: c.admin.tokens.length > 0 ? c.admin.tokens : [{ name: 'demo-operator', token: tokens.operator, role: 'operator' }, { name: 'demo-viewer', token: tokens.viewer, role: 'viewer' }]
      },
      // the bundled config's relative state file lands beside the package or in the temp folder
      state: opts.configPath === undefined && c.state.store === 'file' ? { ...c.state, file: join(stateDir, 'demo-state.json') } : c.state
    })
  })
  let stopped: Promise<void> | undefined
  return {
    legacy,
    new: fresh,
    gateway,
    tokens,
    stop: () => (stopped ??= (async () => {
      await gateway.stop()
      await Promise.all([legacy.close(), fresh.close()])
    })())
  }
}
