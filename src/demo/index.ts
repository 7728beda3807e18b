// `dualtrack demo`: the sample legacy and new systems plus the gateway, all in one process
import { resolve } from 'node:path'
import { startDemoBackend, type DemoBackend } from './backend.js'
import { startGateway, type Running } from '../main.js'

export { startDemoBackend, type DemoBackend } from './backend.js'

export const DEMO_CONFIG = 'config/demo.yaml'

export interface Demo { legacy: DemoBackend, new: DemoBackend, gateway: Running, stop(): Promise<void> }

export async function startDemo (opts: { configPath?: string, pretty?: boolean, signals?: boolean, gatewayPort?: number, adminPort?: number } = {}): Promise<Demo> {
  const legacy = await startDemoBackend('legacy')
  const fresh = await startDemoBackend('new')
  const env = { ...process.env, DEMO_LEGACY_URL: legacy.url, DEMO_NEW_URL: fresh.url }
  const gateway = await startGateway({
    configPath: resolve(opts.configPath ?? DEMO_CONFIG),
    env,
    pretty: opts.pretty ?? false,
    signals: opts.signals ?? false,
    overrides: (c) => ({
      ...c,
      server: { ...c.server, port: opts.gatewayPort ?? c.server.port },
      admin: { ...c.admin, port: opts.adminPort ?? c.admin.port }
    })
  })
  let stopped: Promise<void> | undefined
  return {
    legacy,
    new: fresh,
    gateway,
    stop: () => (stopped ??= (async () => {
      await gateway.stop()
      await Promise.all([legacy.close(), fresh.close()])
    })())
  }
}
