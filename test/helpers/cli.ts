// the CLI as a child process against a real gateway written to a real file (reload re-reads it)
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { promisify } from 'node:util'
import { startBackend } from './backend.js'
import { startGatewayFromYaml, basicYaml, type TestGateway } from './gateway.js'
import { VIEWER, TOKENS_YAML, call } from './admin.js'

const run = promisify(execFile)
export const BIN = `${process.cwd()}/bin/dualtrack.js`

export async function cli (admin: string, token: string | undefined, ...args: string[]) {
  try {
    const r = await run(process.execPath, [BIN, ...args, '--admin', admin], { env: { ...process.env, DUALTRACK_TOKEN: token ?? '' }, timeout: 30_000 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

const SHADOW = `
  - name: catalog
    match: { prefix: /api/catalog }
    rollout: checkout
    shadow: { percent: 100, methods: [GET] }
`

/** basicYaml's gateway plus a shadowed catalog route, from a file */
export async function cliGateway (t: { teardown(fn: () => unknown): void }, extra: { rollout?: string } = {}): Promise<TestGateway> {
  const legacy = await startBackend('legacy', t)
  const fresh = await startBackend('new', t)
  const dir = mkdtempSync(`${tmpdir()}/dualtrack-cli-`)
  const yaml = `${basicYaml(legacy.url, fresh.url, { top: TOKENS_YAML, routes: SHADOW, ...extra })}\nstate: { store: file, file: "${dir}/state.json" }\n`
  writeFileSync(`${dir}/gateway.yaml`, yaml)
  return startGatewayFromYaml(yaml, t, {}, `${dir}/gateway.yaml`)
}

export const stateOf = async (gw: TestGateway) => (await call(gw.adminUrl, 'GET', '/admin/state', VIEWER)).body as { rollouts: Record<string, { percent: number, regions: Record<string, number>, rollback: { mode: string } | null, plan?: unknown }> }
