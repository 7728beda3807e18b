// the gateway config of deploy/k8s/configmap.yaml, loaded as a pod would: its tokenFile paths
// (the Secret's mount) point at a temporary folder holding the given tokens
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { parse } from 'yaml'
import { parseConfig, type Config } from '../../src/config/index.js'
import { tempDir } from './gateway.js'

/** where the Deployment mounts the Secret dualtrack-tokens */
export const TOKENS_MOUNT = '/etc/dualtrack-tokens'

/** the ConfigMap's gateway.yaml as text */
export function configMapYaml (root = '.'): string {
  const cm = parse(readFileSync(join(root, 'deploy/k8s/configmap.yaml'), 'utf8')) as { data: Record<string, string> }
  return cm.data['gateway.yaml'] ?? ''
}

/** load it with these files in the token folder (by default: what `openssl rand -hex 32` makes) */
export function loadK8sConfig (files: Record<string, string> = { operator: randomBytes(32).toString('hex'), viewer: randomBytes(32).toString('hex') },
  env: NodeJS.ProcessEnv = { REDIS_PASSWORD: 'p'.repeat(32) }, root = '.'): Config {
  const dir = join(tempDir('dualtrack-k8s-'), 'tokens')
  mkdirSync(dir)
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), value)
  return parseConfig(configMapYaml(root).replaceAll(`${TOKENS_MOUNT}/`, `${dir}/`), 'deploy/k8s/configmap.yaml#gateway.yaml', env)
}
