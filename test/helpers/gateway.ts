// a real gateway on port 0 in front of real backends, built from YAML text like a user's file
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { Writable } from 'node:stream'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig, type Config } from '../../src/config/index.js'
import { buildApp, type Dualtrack } from '../../src/app.js'

export interface TestGateway {
  readonly app: Dualtrack
  readonly url: string
  readonly adminUrl: string
  readonly config: Config
  /** every log line the gateway wrote, parsed */
  readonly logs: Record<string, unknown>[]
}

export function captureLogger (level = 'info') {
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    }
  })
  return { logs, logger: pino({ level }, stream) }
}

/** a fresh folder for one test's state files */
export function tempDir (prefix = 'dualtrack-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export async function startGatewayFromYaml (yaml: string, t: { teardown(fn: () => unknown): void }, env: NodeJS.ProcessEnv = {}, file = 'test.yaml'): Promise<TestGateway> {
  // every gateway gets its own state file unless the YAML names one
  const withState = /^state:/m.test(yaml) ? yaml : `${yaml}\nstate: { store: file, file: "${join(tempDir(), 'state.json')}" }\n`
  const config = parseConfig(withState, file, env)
  const { logs, logger } = captureLogger()
  const app = await buildApp(config, { logger })
  await app.gateway.listen({ port: 0, host: '127.0.0.1' })
  await app.admin.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.gateway.server.address() as AddressInfo).port
  const aport = (app.admin.server.address() as AddressInfo).port
  return { app, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${aport}`, config, logs }
}

/** the YAML of a gateway in front of two test backends with one rollout, `checkout` */
export function basicYaml (legacy: string, fresh: string, extra: { rollout?: string, routes?: string, top?: string, timeoutMs?: number } = {}): string {
  return `
backends:
  legacy: { url: "${legacy}", timeoutMs: ${extra.timeoutMs ?? 2000}, connectTimeoutMs: 500 }
  new: { url: "${fresh}", timeoutMs: ${extra.timeoutMs ?? 2000}, connectTimeoutMs: 500 }
rollouts:
  checkout:
    percent: 50
    salt: test-salt
    cohortKey: [header:x-user-id, cookie:uid, query:uid, jwt:sub]
    regions: { key: header:x-region, percent: { guangdong: 100, zhejiang: 0 } }
    force: { new: [qa-user-1], legacy: [vip-42] }
${extra.rollout ?? ''}
routes:
  - name: orders
    match: { prefix: /api/orders }
    rollout: checkout
  - name: payments
    match: { prefix: /api/payments }
    rollout: checkout
${extra.routes ?? ''}
default: legacy
${extra.top ?? ''}
`
}
