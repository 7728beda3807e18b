// the deployment files agree with each other: every YAML under deploy/ parses; the Kubernetes
// Deployment, Service, ConfigMap, Secret, ServiceMonitor and PDB name the same ports, paths and keys;
// the Dockerfile and the compose file match them; the Grafana dashboard names no datasource uid
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join, relative, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'
import { memoryBudget } from '../../src/config/index.js'
import { loadK8sConfig } from '../helpers/k8s-config.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEPLOY = join(ROOT, 'deploy')
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8')

interface Meta { name: string, labels?: Record<string, string> }
interface K8sObject { apiVersion: string, kind: string, metadata: Meta, [key: string]: unknown }
interface Probe { httpGet?: { path: string, port: string | number } }
interface EnvVar { name: string, value?: string, valueFrom?: { secretKeyRef?: { name: string, key: string } } }
interface Container {
  name: string
  image: string
  args?: string[]
  ports?: { name?: string, containerPort: number }[]
  env?: EnvVar[]
  readinessProbe?: Probe
  livenessProbe?: Probe
  resources?: { requests?: Record<string, string>, limits?: Record<string, string> }
  securityContext?: { readOnlyRootFilesystem?: boolean, runAsNonRoot?: boolean, allowPrivilegeEscalation?: boolean }
  volumeMounts?: { name: string, mountPath: string, subPath?: string, readOnly?: boolean }[]
}
interface PodSpec {
  containers: Container[]
  terminationGracePeriodSeconds?: number
  securityContext?: { runAsNonRoot?: boolean, runAsUser?: number }
  volumes?: { name: string, configMap?: { name: string }, secret?: { secretName: string, defaultMode?: number }, emptyDir?: object }[]
}
interface Deployment extends K8sObject {
  spec: { replicas: number, selector: { matchLabels: Record<string, string> }, template: { metadata: Meta, spec: PodSpec } }
}
interface Service extends K8sObject {
  spec: { selector: Record<string, string>, ports: { name: string, port: number, targetPort: string | number }[] }
}
interface ConfigMap extends K8sObject { data: Record<string, string> }
interface Secret extends K8sObject { data?: Record<string, string>, stringData?: Record<string, string> }
interface ServiceMonitor extends K8sObject {
  spec: {
    selector: { matchLabels: Record<string, string> }
    endpoints: { port: string, path: string, authorization?: { credentials?: { name: string, key: string } } }[]
  }
}
interface Pdb extends K8sObject { spec: { minAvailable: number, selector: { matchLabels: Record<string, string> } } }
interface GatewayConfig {
  server: { host: string, port: number, drainDelayMs?: number }
  admin: { host: string, port: number, metricsAuth?: boolean }
  backends: Record<'legacy' | 'new', { url: string }>
  state: { store: string }
}
interface Target { expr?: string, datasource?: unknown }
interface Panel { id: number, type: string, title: string, repeat?: string, datasource?: unknown, targets?: Target[], gridPos: { x: number, y: number, w: number, h: number } }
interface Dashboard {
  uid: string
  schemaVersion: number
  panels: Panel[]
  templating: { list: { name: string, type: string, query: unknown, datasource?: unknown, multi?: boolean, includeAll?: boolean }[] }
  annotations: { list: { name: string, datasource?: unknown, expr?: string }[] }
}
interface ComposeService { image?: string, command?: string[], volumes?: string[], ports?: string[], environment?: Record<string, string> }

function yamlFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name)
    if (e.isDirectory()) return yamlFiles(p)
    return /\.ya?ml$/.test(e.name) ? [p] : []
  }).sort()
}

// every YAML document under deploy/, keyed by its path relative to the repo
const docs = new Map<string, unknown[]>()
const parseErrors: string[] = []
for (const file of yamlFiles(DEPLOY)) {
  const rel = relative(ROOT, file).split('\\').join(posix.sep)
  const parsed = parseAllDocuments(readFileSync(file, 'utf8'))
  const list = Array.isArray(parsed) ? parsed : [parsed]
  for (const d of list) for (const e of d.errors) parseErrors.push(`${rel}: ${e.message}`)
  docs.set(rel, list.map((d) => d.toJS()).filter((x) => x != null))
}

const k8s: K8sObject[] = [...docs].filter(([f]) => f.startsWith('deploy/k8s/') && !f.endsWith('kustomization.yaml'))
  .flatMap(([, list]) => list as K8sObject[])
function one<T extends K8sObject> (kind: string, name: string): T {
  const found = k8s.filter((o) => o.kind === kind && o.metadata.name === name)
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name} in deploy/k8s, found ${found.length}`)
  return found[0] as T
}

const deployment = one<Deployment>('Deployment', 'dualtrack')
const service = one<Service>('Service', 'dualtrack')
const configMap = one<ConfigMap>('ConfigMap', 'dualtrack-config')
const secret = one<Secret>('Secret', 'dualtrack-tokens')
const serviceMonitor = one<ServiceMonitor>('ServiceMonitor', 'dualtrack')
const pdb = one<Pdb>('PodDisruptionBudget', 'dualtrack')
const pod = deployment.spec.template.spec
const container = pod.containers.find((c) => c.name === 'dualtrack') as Container
const gateway = parse(configMap.data['gateway.yaml'] ?? '') as GatewayConfig
const portByName = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]))
// a probe or Service port may name the container port or give its number
const resolvePort = (p: string | number | undefined): number | undefined => typeof p === 'number' ? p : portByName.get(p)
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v)

t.test('every YAML file under deploy/ parses', async (t) => {
  t.same(parseErrors, [])
  t.ok(docs.size >= 15, `found ${docs.size} YAML files`)
})

t.test('the Deployment, the Service and the ConfigMap agree on the two ports', async (t) => {
  t.equal(portByName.get('http'), 8080)
  t.equal(portByName.get('admin'), 9090)
  t.equal(gateway.server.port, portByName.get('http'), 'server.port is the http container port')
  t.equal(gateway.admin.port, portByName.get('admin'), 'admin.port is the admin container port')
  t.same(service.spec.ports.map((p) => [p.name, p.port, resolvePort(p.targetPort)]).sort(), [['admin', 9090, 9090], ['http', 8080, 8080]])
  t.ok(matches(service.spec.selector, deployment.spec.template.metadata.labels), 'the Service selects the gateway pods')
  t.ok(matches(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels), 'the Deployment selects its own pods')
  // probes and Prometheus come from outside the pod: a loopback admin listener would fail them
  t.equal(gateway.admin.host, '0.0.0.0')
  t.equal(gateway.server.host, '0.0.0.0')
})

t.test('the probes ask the admin port for /readyz and /healthz', async (t) => {
  t.equal(container.readinessProbe?.httpGet?.path, '/readyz')
  t.equal(resolvePort(container.readinessProbe?.httpGet?.port), gateway.admin.port)
  t.equal(container.livenessProbe?.httpGet?.path, '/healthz')
  t.equal(resolvePort(container.livenessProbe?.httpGet?.port), gateway.admin.port)
})

t.test('the Deployment runs 3 replicas on shared state and drains itself', async (t) => {
  t.equal(deployment.spec.replicas, 3)
  t.equal(gateway.state.store, 'redis', 'replicas share state through redis')
  t.equal(gateway.server.drainDelayMs, 5000)
  t.equal(pod.terminationGracePeriodSeconds, 30)
  t.ok((gateway.server.drainDelayMs ?? 0) / 1000 + 10 <= (pod.terminationGracePeriodSeconds ?? 30), 'drain delay plus 10 s fits in the grace period')
  t.equal(container.image, 'dualtrack:0.1.0')
  t.same(container.args, ['start', '--config', '/etc/dualtrack/gateway.yaml'])
  t.same(container.resources, { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '384Mi' } })
})

t.test('the config file the args name is the ConfigMap, mounted as a directory', async (t) => {
  const configPath = container.args?.[container.args.indexOf('--config') + 1] ?? ''
  const dir = posix.dirname(configPath)
  const mount = container.volumeMounts?.find((m) => m.mountPath === dir)
  t.ok(mount, `a volume is mounted at ${dir}`)
  // a subPath mount never sees a ConfigMap update, so the hot reload would never fire
  t.equal(mount?.subPath, undefined, 'no subPath')
  const volume = pod.volumes?.find((v) => v.name === mount?.name)
  t.equal(volume?.configMap?.name, configMap.metadata.name)
  t.type(configMap.data[posix.basename(configPath)], 'string', `the ConfigMap has ${posix.basename(configPath)}`)
})

t.test('the pod runs as non-root on a read-only root filesystem, with var/ writable', async (t) => {
  t.equal(pod.securityContext?.runAsNonRoot, true)
  t.not(pod.securityContext?.runAsUser, 0)
  t.equal(container.securityContext?.readOnlyRootFilesystem, true)
  t.equal(container.securityContext?.allowPrivilegeEscalation, false)
  const varMount = container.volumeMounts?.find((m) => m.mountPath === '/app/var')
  t.ok(varMount, '/app/var is mounted')
  t.ok(pod.volumes?.find((v) => v.name === varMount?.name)?.emptyDir, 'as an emptyDir')
})

t.test('the Secrets hold exactly the keys the Deployment and the ServiceMonitor read', async (t) => {
  const keysOf = (s: Secret) => Object.keys({ ...s.data, ...s.stringData }).sort()
  const refs = (container.env ?? []).flatMap((e) => e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [])
  for (const r of refs) {
    const from = k8s.find((o) => o.kind === 'Secret' && o.metadata.name === r.name) as Secret | undefined
    t.ok(from, `${r.key} comes from the Secret ${r.name}, which exists`)
    t.ok(from !== undefined && keysOf(from).includes(r.key), `the Secret ${r.name} has ${r.key}`)
  }
  // the admin tokens are not in the environment (a rotation would need a restart): only the Redis password is
  t.same(refs.map((r) => `${r.name}/${r.key}`).sort(), ['dualtrack-redis/REDIS_PASSWORD'])
  for (const e of container.env ?? []) if (e.valueFrom?.secretKeyRef) t.equal(e.name, e.valueFrom.secretKeyRef.key, `env ${e.name} reads the key of the same name`)
  // the ConfigMap's ${VAR} references are all provided
  for (const m of (configMap.data['gateway.yaml'] ?? '').matchAll(/\$\{([A-Z0-9_]+)(:-[^}]*)?\}/g)) {
    t.ok((container.env ?? []).some((e) => e.name === m[1]), `the Deployment sets ${m[1]}`)
  }
  for (const s of k8s.filter((o): o is Secret => o.kind === 'Secret')) {
    for (const v of Object.values({ ...s.stringData })) t.match(v, /REPLACE-ME/, `${s.metadata.name}: placeholders are marked`)
  }
})

t.test('the admin tokens are files of the Secret, mounted as a folder: a rotation needs no restart', async (t) => {
  const files = (parse(configMap.data['gateway.yaml'] ?? '') as { admin: { tokens: { name: string, token?: string, tokenFile?: string }[] } }).admin.tokens
  t.ok(files.length >= 2, 'an operator and a viewer')
  for (const x of files) {
    t.equal(x.token, undefined, `${x.name}: no token in the ConfigMap`)
    t.match(x.tokenFile, /^\//, `${x.name}: an absolute tokenFile`)
  }
  const dir = posix.dirname(files[0]?.tokenFile ?? '')
  t.ok(files.every((x) => posix.dirname(x.tokenFile ?? '') === dir), `every token file is in ${dir}`)
  const mount = container.volumeMounts?.find((m) => m.mountPath === dir)
  t.ok(mount, `a volume is mounted at ${dir}`)
  // a subPath mount never sees a Secret update: the rotated token would never arrive
  t.equal(mount?.subPath, undefined, 'no subPath')
  t.equal(mount?.readOnly, true)
  const volume = pod.volumes?.find((v) => v.name === mount?.name)
  t.equal(volume?.secret?.secretName, secret.metadata.name, 'the Secret dualtrack-tokens')
  t.equal(volume?.secret?.defaultMode, 0o440, 'readable by the node user\'s group only')
  t.same(Object.keys({ ...secret.data, ...secret.stringData }).sort(), files.map((x) => posix.basename(x.tokenFile ?? '')).sort(), 'the Secret\'s keys are exactly the token files')
  t.notOk(container.volumeMounts?.some((m) => m.mountPath !== dir && dir.startsWith(m.mountPath + '/')), 'not inside another mount')
})

t.test('the memory limit holds the worst case of the ConfigMap\'s config with 10% to spare (README: Sizing)', async (t) => {
  const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(container.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '')?.[1])
  t.equal(oldSpace, 128, 'NODE_OPTIONS caps the heap')
  const mib = (q: string | undefined) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(q ?? '')
    return m === null ? NaN : Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1)
  }
  const limit = mib(container.resources?.limits?.memory)
  const budget = memoryBudget(loadK8sConfig(undefined, undefined, ROOT), oldSpace)
  t.same(budget, { heap: 176, native: 64, shadow: 24, exchanges: 64, total: 328 }, 'the figures of the README table')
  t.ok(budget.total <= limit * 0.9, `${budget.total} MiB at worst in a ${limit} MiB limit`)
  t.ok(mib(container.resources?.requests?.memory) <= limit, 'the request is not above the limit')
  // the README states the same sum
  t.match(read('README.md'), /\*\*328 MiB\*\*: 56 MiB \(15%\) of 384 MiB left/)
})

t.test('the ServiceMonitor scrapes /metrics on the Service\'s admin port', async (t) => {
  t.ok(matches(serviceMonitor.spec.selector.matchLabels, service.metadata.labels), 'it selects the Service by its labels')
  const ep = serviceMonitor.spec.endpoints[0]
  t.equal(ep?.port, 'admin')
  t.ok(service.spec.ports.some((p) => p.name === ep?.port), 'the Service has that port name')
  t.equal(ep?.path, '/metrics')
  if (gateway.admin.metricsAuth === true) {
    const cred = ep?.authorization?.credentials
    t.equal(cred?.name, secret.metadata.name, 'metricsAuth: the bearer token comes from the Secret')
    t.ok(Object.keys({ ...secret.stringData, ...secret.data }).includes(cred?.key ?? ''), 'under a key it has')
  }
})

t.test('the replicas find each other: state.peers.dns names a headless Service of the gateway pods on the admin port', async (t) => {
  interface Headless extends Service { spec: Service['spec'] & { clusterIP?: string, publishNotReadyAddresses?: boolean } }
  // the ConfigMap's config as the gateway loads it (the real loader, the Secret's files in place)
  const viewer = randomBytes(32).toString('hex')
  const c = loadK8sConfig({ operator: randomBytes(32).toString('hex'), viewer })
  const peers = c.state.peers
  t.ok(peers, 'state.peers is configured')
  t.equal(peers?.urls, undefined, 'discovered, not a fixed list')
  const [host, port] = (peers?.dns ?? '').split(':')
  const headless = one<Headless>('Service', host ?? '')
  t.equal(headless.spec.clusterIP, 'None', 'headless: its name answers every pod\'s address')
  t.equal(headless.spec.publishNotReadyAddresses, true, 'a draining replica still answers for the owners it holds')
  t.ok(matches(headless.spec.selector, deployment.spec.template.metadata.labels), 'it selects the gateway pods')
  const p = headless.spec.ports.find((x) => x.port === Number(port))
  t.ok(p, `the Service has port ${port}`)
  // a headless Service does not translate ports: the number in dns is the pods' own admin port
  t.equal(resolvePort(p?.targetPort), Number(port), 'the port is the container port it targets')
  t.equal(c.admin.port, Number(port), 'the port is admin.port, where GET /admin/affinity/:orderId answers')
  t.equal(c.admin.host, '0.0.0.0', 'the admin listener is reachable from the other pods')
  // the peers authenticate with a token every replica accepts (a viewer may read owners)
  t.equal(peers?.token, viewer, 'the token is the viewer file of the mounted Secret')
  t.match(peers?.tokenFile, /\/viewer$/, 'read from its file, so a rotation needs no restart')
  t.ok(c.admin.tokens.some((x) => x.token === viewer && x.role === 'viewer'), 'and every replica accepts it')
  t.ok(peers !== undefined && peers.timeoutMs >= 100 && peers.timeoutMs <= 1000, `timeoutMs ${peers?.timeoutMs}: sized for a busy replica (README: Peers)`)
  // the ServiceMonitor must not scrape every pod a second time through the headless Service
  const services = k8s.filter((o) => o.kind === 'Service' && matches(serviceMonitor.spec.selector.matchLabels, o.metadata.labels))
  t.same(services.map((o) => o.metadata.name), [service.metadata.name], 'the ServiceMonitor selects one Service')
  // and the NetworkPolicy lets a replica reach another's admin port
  interface Np extends K8sObject { spec: { podSelector: { matchLabels: Record<string, string> }, ingress: { from?: { podSelector?: { matchLabels: Record<string, string> }, namespaceSelector?: unknown }[], ports?: { port: string | number }[] }[] } }
  const pods = deployment.spec.template.metadata.labels
  const policies = k8s.filter((o) => o.kind === 'NetworkPolicy').map((o) => o as Np).filter((np) => matches(np.spec.podSelector.matchLabels, pods))
  t.ok(policies.length > 0, 'a policy selects the gateway pods')
  t.ok(policies.some((np) => np.spec.ingress.some((r) =>
    (r.ports ?? []).some((x) => resolvePort(x.port) === Number(port)) &&
    (r.from ?? []).some((f) => f.namespaceSelector === undefined && matches(f.podSelector?.matchLabels ?? {}, pods)))), 'the gateway pods may reach each other\'s peer port')
})

t.test('the PodDisruptionBudget keeps 2 of the replicas', async (t) => {
  t.equal(pdb.spec.minAvailable, 2)
  t.ok(pdb.spec.minAvailable < deployment.spec.replicas, 'a node drain can still evict one')
  t.ok(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels))
})

t.test('the kustomization lists every manifest in deploy/k8s', async (t) => {
  const kust = (docs.get('deploy/k8s/kustomization.yaml') ?? [])[0] as { resources: string[] }
  const files = [...docs.keys()].filter((f) => f.startsWith('deploy/k8s/') && !f.endsWith('kustomization.yaml')).map((f) => posix.basename(f)).sort()
  t.same([...kust.resources].sort(), files)
  for (const o of k8s) t.equal((o.metadata as Meta & { namespace?: string }).namespace, undefined, `${o.kind} ${o.metadata.name} sets no namespace`)
})

// Dockerfile instructions with line continuations joined and comments dropped
function dockerfile (text: string): { op: string, args: string }[] {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n/g, ' ').split('\n')
  return lines.map((l) => l.trim()).filter(Boolean).map((l) => {
    const [op = '', ...rest] = l.split(/\s+/)
    return { op: op.toUpperCase(), args: rest.join(' ') }
  })
}

t.test('the Dockerfile', async (t) => {
  const ins = dockerfile(read('Dockerfile'))
  const all = (op: string) => ins.filter((i) => i.op === op)
  const from = all('FROM')
  t.ok(from.length >= 2, 'multi-stage')
  // one base for every stage: the current Node LTS at an exact release (.ci/run tests the same one)
  const base = /^NODE_IMAGE=(node:(\d+)\.\d+\.\d+-bookworm-slim)$/.exec(all('ARG').find((i) => i.args.startsWith('NODE_IMAGE='))?.args ?? '')
  t.ok(base, 'ARG NODE_IMAGE names an exact node release')
  t.equal(base?.[2], '24', 'on Node 24, the current LTS (Node 20 reached end of life on 2026-04-30)')
  for (const f of from) t.match(f.args, /^\$\{NODE_IMAGE\} AS /, `${f.args} uses NODE_IMAGE`)
  const runtime = ins.slice(ins.lastIndexOf(from.at(-1) as { op: string, args: string }))
  t.ok(runtime.some((i) => i.op === 'RUN' && /rm -rf .*\/usr\/local\/lib\/node_modules\/npm/.test(i.args)), 'npm is removed from the runtime stage')
  t.notOk(runtime.some((i) => i.op === 'RUN' && /\bnpm (ci|install)\b/.test(i.args)), 'the runtime stage runs no npm')
  const labels = runtime.filter((i) => i.op === 'LABEL').map((i) => i.args).join(' ')
  for (const l of ['title', 'version', 'licenses', 'base.name']) t.match(labels, `org.opencontainers.image.${l}=`, `OCI label ${l}`)
  const exposed = all('EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.split('/')[0]))
  t.ok(exposed.includes(gateway.server.port), `EXPOSE ${gateway.server.port}`)
  t.ok(exposed.includes(gateway.admin.port), `EXPOSE ${gateway.admin.port}`)
  const user = all('USER').at(-1)?.args ?? 'root'
  t.notMatch(user, /^(root|0)(:|$)/, `the final USER (${user}) is not root`)
  // the runtime stage starts at the last FROM: USER must come after it
  const lastFrom = ins.lastIndexOf(from.at(-1) as { op: string, args: string })
  t.ok(ins.findIndex((i, n) => n > lastFrom && i.op === 'USER') > lastFrom, 'USER is set in the runtime stage')
  const health = all('HEALTHCHECK').at(-1)?.args ?? ''
  t.match(health, /\/healthz/, 'HEALTHCHECK asks /healthz')
  t.match(health, new RegExp(`127\\.0\\.0\\.1:${gateway.admin.port}`), 'on the admin port over loopback')
  const entrypoint = JSON.parse(all('ENTRYPOINT').at(-1)?.args ?? 'null') as string[] | null
  t.ok(Array.isArray(entrypoint), 'ENTRYPOINT in exec form (node is PID 1 and gets SIGTERM itself)')
  t.same(entrypoint, ['node', 'bin/dualtrack.js'])
  t.same(JSON.parse(all('CMD').at(-1)?.args ?? 'null'), ['start', '--config', '/etc/dualtrack/gateway.yaml'])
  t.same(JSON.parse(all('CMD').at(-1)?.args ?? 'null'), container.args, 'the Deployment passes the image\'s default args')
  t.equal(all('STOPSIGNAL').at(-1)?.args, 'SIGTERM')
  t.ok(ins.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args)), 'production dependencies only are installed for the runtime')
  t.ok(ins.some((i) => i.op === 'RUN' && /npm run build/.test(i.args)), 'the build stage builds')
  // the build context is an allow-list: whatever the Dockerfile COPYs from it must be let in
  const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  if (ignore.includes('*')) {
    const sources = all('COPY').filter((i) => !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    for (const s of sources) {
      const top = s.replace(/^\.\//, '').split('/')[0] ?? ''
      t.ok(ignore.includes(`!${top}`) || ignore.includes(`!${top}/`) || ignore.includes(`!${s.replace(/^\.\//, '')}`), `.dockerignore lets ${s} in`)
    }
  }
})

t.test('the Grafana dashboard names no datasource uid and every panel queries something', async (t) => {
  const dash = JSON.parse(read('deploy/grafana/dualtrack.json')) as Dashboard
  const DS = { type: 'prometheus', uid: '${datasource}' }
  // anywhere in the JSON, a datasource is the ${datasource} variable (or the variable itself)
  const bad: string[] = []
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${path}[${i}]`))
    else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'datasource' && !(typeof v === 'object' && v !== null && (v as { uid?: string }).uid === '${datasource}')) bad.push(`${path}.${k}`)
        walk(v, `${path}.${k}`)
      }
    }
  }
  walk(dash, '$')
  t.same(bad, [], 'no hard-coded datasource')
  t.equal(dash.schemaVersion, 39)
  const vars = new Map(dash.templating.list.map((v) => [v.name, v]))
  t.same([...vars.keys()], ['datasource', 'namespace', 'job', 'rollout', 'route'], 'the variables, each after the ones it depends on')
  t.match(vars.get('datasource'), { type: 'datasource', query: 'prometheus' })
  // one environment at a time: namespace and job are single choices (with no namespace label, as
  // under compose, the variable is empty and =~"" matches the series without one)
  t.match(vars.get('namespace'), { type: 'query', multi: false, includeAll: false, query: { query: 'label_values(dualtrack_build_info, namespace)' } })
  t.match(vars.get('job'), { type: 'query', multi: false, includeAll: false, query: { query: 'label_values(dualtrack_build_info{namespace=~"$namespace"}, job)' } })
  // rows repeat per rollout and per route: several (or all) may be chosen
  t.match(vars.get('rollout'), { type: 'query', multi: true, includeAll: true, query: { query: 'label_values(dualtrack_rollout_percent{namespace=~"$namespace",job=~"$job"}, rollout)' } })
  t.match(vars.get('route'), { type: 'query', multi: true, includeAll: true, query: { query: 'label_values(dualtrack_requests_total{namespace=~"$namespace",job=~"$job"}, route)' } })
  const panels = dash.panels.filter((p) => p.type !== 'row')
  t.ok(panels.length >= 15, `${panels.length} panels`)
  t.equal(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length, 'panel ids are unique')
  for (const p of panels) {
    t.same(p.datasource, DS, `${p.title}: datasource is \${datasource}`)
    t.ok((p.targets ?? []).some((x) => typeof x.expr === 'string' && x.expr.trim() !== ''), `${p.title}: has a target with an expr`)
    for (const x of p.targets ?? []) t.same(x.datasource ?? DS, DS, `${p.title}: target datasource`)
    t.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: fits the 24-column grid`)
  }
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr ?? ''))
  // the panels the dashboard promises, by the metric each reads
  for (const m of ['dualtrack_rollout_percent', 'dualtrack_sample_ratio_observed', 'dualtrack_requests_total', 'dualtrack_request_duration_seconds_bucket',
    'dualtrack_upstream_errors_total', 'dualtrack_routing_decisions_total', 'dualtrack_rollback_active', 'dualtrack_shadow_total',
    'dualtrack_shadow_field_mismatches_total', 'dualtrack_state_store_up', 'dualtrack_state_version', 'dualtrack_config_reloads_total',
    'dualtrack_segment_decisions_total', 'dualtrack_affinity_total', 'dualtrack_build_info',
    'dualtrack_guard_verdict', 'dualtrack_guard_p_value', 'dualtrack_sample_ratio_p_value']) {
    t.ok(exprs.some((e) => e.includes(m)), `some panel reads ${m}`)
  }
  const annotationExprs = dash.annotations.list.map((a) => a.expr ?? '').filter(Boolean)
  // every series a query selects is this namespace's and this job's: staging and production are never summed
  for (const e of [...exprs, ...annotationExprs]) {
    for (const m of e.matchAll(/\b((?:dualtrack|process|nodejs)_\w+)(\{[^}]*\})?/g)) {
      t.ok((m[2] ?? '').startsWith('{namespace=~"$namespace",job=~"$job"'), `${m[1]} is filtered by namespace and job in: ${e}`)
    }
    // no route or rollout named in the dashboard: the rows repeat over what the gateway reports
    t.notMatch(e, /\b(route|rollout)="/, `no hard-coded route or rollout in: ${e}`)
  }
  // rows repeat per rollout and per route; their panels filter by the row's value
  const rows = dash.panels.filter((p) => p.type === 'row')
  t.ok(rows.some((r) => r.repeat === 'rollout'), 'a row repeats per rollout')
  t.ok(rows.filter((r) => r.repeat === 'route').length >= 2, 'the legacy-vs-new and the shadow rows repeat per route')
  let repeat: string | undefined
  for (const p of dash.panels) {
    if (p.type === 'row') { repeat = p.repeat; continue }
    if (repeat === undefined) continue
    for (const x of p.targets ?? []) t.match(x.expr ?? '', `${repeat}=~"$${repeat}"`, `${p.title}: filtered by the row's ${repeat}`)
  }
  t.ok(exprs.some((e) => e.includes('route=~"$route"') && e.includes('code=~"2.."')), 'the success rate of each route')
  t.ok(exprs.some((e) => /sum by \(op, result\) \(rate\(dualtrack_affinity_total/.test(e)), 'affinity lookups and records apart')
  t.ok(exprs.some((e) => /^max by \(namespace, job\) \(dualtrack_state_version\{[^}]*\}\) - min by \(namespace, job\) \(dualtrack_state_version\{[^}]*\}\)$/.test(e)), 'the state version spread per job')
  // only the variables the dashboard defines, and Grafana's own
  const known = new Set(['namespace', 'job', 'rollout', 'route', '__rate_interval', '__interval', '__range'])
  for (const e of [...exprs, ...annotationExprs]) {
    for (const m of e.matchAll(/\$\{?(\w+)/g)) t.ok(known.has(m[1] ?? ''), `$${m[1]} is a known variable`)
  }
  const annotations = dash.annotations.list.map((a) => a.expr ?? '')
  t.ok(annotations.some((e) => e.includes('dualtrack_rollback_active')), 'rollbacks are annotated')
  t.ok(annotations.some((e) => e.includes('dualtrack_config_reloads_total')), 'config reloads are annotated')
})

t.test('compose runs the gateway against the two demo systems, Redis, Prometheus and Grafana', async (t) => {
  const compose = (docs.get('deploy/compose.yaml') ?? [])[0] as { services: Record<string, ComposeService> }
  t.same(Object.keys(compose.services).sort(), ['gateway', 'grafana', 'legacy', 'new', 'prometheus', 'redis-0', 'redis-1', 'redis-2', 'sentinel-0', 'sentinel-1', 'sentinel-2'])
  const gw = parse(read('deploy/compose/gateway.yaml')) as GatewayConfig
  t.equal(gw.state.store, 'redis')
  t.equal(gw.admin.host, '0.0.0.0')
  for (const name of ['legacy', 'new'] as const) {
    const cmd = compose.services[name]?.command ?? []
    t.equal(cmd[0], 'demo-backend')
    t.equal(cmd[cmd.indexOf('--name') + 1], name)
    t.equal(gw.backends[name].url, `http://${name}:${cmd[cmd.indexOf('--port') + 1]}`, `backends.${name}.url reaches the ${name} service`)
    t.equal(compose.services[name]?.image, compose.services.gateway?.image, `${name} runs the gateway's image`)
  }
  t.ok(compose.services.gateway?.volumes?.includes('./compose:/etc/dualtrack:ro'), 'the gateway mounts deploy/compose at /etc/dualtrack')
  t.ok(compose.services.prometheus?.volumes?.some((v) => v.startsWith('./prometheus:/etc/prometheus')), 'prometheus mounts deploy/prometheus')
  const prom = (docs.get('deploy/prometheus/prometheus.yml') ?? [])[0] as { rule_files: string[], scrape_configs: { job_name: string, metrics_path?: string, static_configs?: { targets: string[] }[] }[] }
  t.same(prom.rule_files, ['alerts.yml'])
  const job = prom.scrape_configs.find((j) => j.job_name === 'dualtrack')
  t.equal(job?.metrics_path ?? '/metrics', '/metrics')
  t.same(job?.static_configs?.[0]?.targets, [`gateway:${gw.admin.port}`], 'prometheus scrapes the gateway\'s admin port')
  t.equal(gw.admin.metricsAuth, false, 'the static scrape sends no token')
  t.ok(compose.services.grafana?.volumes?.some((v) => v.startsWith('./grafana/dualtrack.json:')), 'grafana mounts the dashboard')
  t.ok(compose.services.grafana?.volumes?.some((v) => v.startsWith('./grafana/provisioning:/etc/grafana/provisioning')), 'and the provisioning')
  const ds = (docs.get('deploy/grafana/provisioning/datasources/prometheus.yaml') ?? [])[0] as { datasources: { type: string, url: string }[] }
  t.match(ds.datasources, [{ type: 'prometheus', url: 'http://prometheus:9090' }])
  const providers = (docs.get('deploy/grafana/provisioning/dashboards/dualtrack.yaml') ?? [])[0] as { providers: { options: { path: string } }[] }
  const dashMount = compose.services.grafana?.volumes?.find((v) => v.startsWith('./grafana/dualtrack.json:'))?.split(':')[1] ?? ''
  t.equal(posix.dirname(dashMount), providers.providers[0]?.options.path, 'the provider loads the folder the dashboard is mounted in')
})
