// every Kubernetes manifest under deploy/k8s checked against the Kubernetes API schemas (the
// kubernetes-models validators, the ServiceMonitor against the Prometheus Operator's CRD), with
// a strict unknown-field check on top (the API server would drop or refuse a misspelled field);
// and the shape of the Redis that survives a node drain, the NetworkPolicies, and the Redis
// password read by both Redis and the gateway from one Secret
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const K8S = join(ROOT, 'deploy/k8s')

interface ValidationError { instancePath: string, keyword: string, message?: string, params?: unknown }
type Validate = ((data: unknown) => boolean) & { errors?: ValidationError[] | null }
interface Obj { apiVersion: string, kind: string, metadata: { name: string, labels?: Record<string, string> }, [k: string]: unknown }

// the validators by apiVersion/kind: kubernetes-models' compiled schemas of the Kubernetes API
const schemaOf: Record<string, string> = {
  'apps/v1/Deployment': 'IoK8sApiAppsV1Deployment',
  'apps/v1/StatefulSet': 'IoK8sApiAppsV1StatefulSet',
  'v1/Service': 'IoK8sApiCoreV1Service',
  'v1/ConfigMap': 'IoK8sApiCoreV1ConfigMap',
  'v1/Secret': 'IoK8sApiCoreV1Secret',
  'policy/v1/PodDisruptionBudget': 'IoK8sApiPolicyV1PodDisruptionBudget',
  'networking.k8s.io/v1/NetworkPolicy': 'IoK8sApiNetworkingV1NetworkPolicy'
}
async function validatorFor (o: Obj): Promise<Validate> {
  const id = `${o.apiVersion}/${o.kind}`
  if (id === 'monitoring.coreos.com/v1/ServiceMonitor') {
    // the CRD's schema; the package does not export its _schemas folder, so by file
    const file = new URL('../../node_modules/@kubernetes-models/prometheus-operator/_schemas/ComGithubPrometheusOperatorPrometheusOperatorPkgApisMonitoringV1ServiceMonitor.js', import.meta.url)
    return (await import(file.href) as { validate: Validate }).validate
  }
  const name = schemaOf[id]
  if (name === undefined) throw new Error(`no schema for ${id}: add it to schemaOf`)
  return (await import(`kubernetes-models/_schemas/${name}`) as { validate: Validate }).validate
}

/**
 * the schema's errors, plus every field the schema never looked at. The validators are compiled
 * Ajv code that reads each property it knows by name; a Proxy records what was read. An object
 * whose keys the validator listed (a map such as labels or ConfigMap data) takes any key; one it
 * never looked into (free-form) is not judged
 */
export function strictValidate (validate: Validate, doc: unknown): string[] {
  const read = new Map<object, Set<PropertyKey>>()
  const listed = new Set<object>()
  const proxies = new WeakMap<object, object>()
  const wrap = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v
    let p = proxies.get(v)
    if (p === undefined) {
      const seen = new Set<PropertyKey>()
      read.set(v, seen)
      p = new Proxy(v, {
        get (target, key, receiver) { seen.add(key); return wrap(Reflect.get(target, key, receiver)) },
        has (target, key) { seen.add(key); return Reflect.has(target, key) },
        ownKeys (target) { listed.add(target); return Reflect.ownKeys(target) }
      })
      proxies.set(v, p)
    }
    return p
  }
  const out: string[] = []
  if (!validate(wrap(doc))) for (const e of validate.errors ?? []) out.push(`${e.instancePath || '/'}: ${e.message ?? e.keyword} ${JSON.stringify(e.params ?? {})}`)
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object') return
    if (Array.isArray(v)) { v.forEach((x, i) => walk(x, `${path}/${i}`)); return }
    const seen = read.get(v)
    const judged = seen !== undefined && seen.size > 0 && !listed.has(v)
    for (const [k, x] of Object.entries(v)) {
      if (judged && !seen.has(k)) out.push(`${path}/${k}: unknown field`)
      walk(x, `${path}/${k}`)
    }
  }
  walk(doc, '')
  return out
}

const files = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()
const objects: { file: string, o: Obj }[] = files.flatMap((file) => parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))
  .map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null).map((o) => ({ file, o })))
const find = <T extends Obj>(kind: string, name: string): T => {
  const o = objects.find((x) => x.o.kind === kind && x.o.metadata.name === name)?.o
  if (o === undefined) throw new Error(`no ${kind} ${name} in deploy/k8s`)
  return o as T
}

t.test('the strict check finds what it should: a wrong type, a misspelled field', async (t) => {
  const validate = await validatorFor({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } })
  const bad = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x', labels: { anything: 'goes' } },
    spec: {
      replica: 3,
      selector: { matchLabels: { a: 'b' } },
      template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', imagePullPolicyy: 'Always', ports: [{ containerPort: '80' }] }] } }
    }
  }
  t.same(strictValidate(validate, bad).sort(), [
    '/spec/replica: unknown field',
    '/spec/template/spec/containers/0/imagePullPolicyy: unknown field',
    '/spec/template/spec/containers/0/ports/0/containerPort: type {"type":"integer"}'
  ].sort())
})

t.test('every manifest is valid against its Kubernetes schema, with no unknown field', async (t) => {
  t.ok(objects.length >= 13, `${objects.length} objects in ${files.length} files`)
  for (const { file, o } of objects) {
    const errors = strictValidate(await validatorFor(o), o)
    t.same(errors, [], `${file}: ${o.kind} ${o.metadata.name}`)
  }
})

interface Container { name: string, command?: string[], env?: { name: string, valueFrom?: { secretKeyRef?: { name: string, key: string } } }[], ports?: { name?: string, containerPort: number }[], volumeMounts?: { name: string, mountPath: string }[] }
interface PodTemplate { metadata: { labels: Record<string, string> }, spec: { containers: Container[], affinity?: { podAntiAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { topologyKey: string, labelSelector: { matchLabels: Record<string, string> } }[] } }, volumes?: { name: string, configMap?: { name: string } }[] } }
interface StatefulSet extends Obj { spec: { replicas: number, serviceName: string, selector: { matchLabels: Record<string, string> }, template: PodTemplate, volumeClaimTemplates: { metadata: { name: string }, spec: { accessModes: string[], resources: { requests: { storage: string } } } }[] } }
interface Deployment extends Obj { spec: { template: PodTemplate } }
interface Pdb extends Obj { spec: { maxUnavailable?: number, minAvailable?: number, selector: { matchLabels: Record<string, string> } } }
interface Peer { podSelector?: { matchLabels: Record<string, string> }, namespaceSelector?: { matchLabels: Record<string, string> } }
interface NetworkPolicy extends Obj { spec: { podSelector: { matchLabels: Record<string, string> }, policyTypes: string[], ingress: { from?: Peer[], ports?: { port: number | string }[] }[] } }

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v)
const redis = find<StatefulSet>('StatefulSet', 'dualtrack-redis')
const gateway = find<Deployment>('Deployment', 'dualtrack')
const gatewayLabels = gateway.spec.template.metadata.labels
const redisLabels = redis.spec.template.metadata.labels
const scripts = find<Obj & { data: Record<string, string> }>('ConfigMap', 'dualtrack-redis-scripts').data
const gatewayConfig = parse(find<Obj & { data: Record<string, string> }>('ConfigMap', 'dualtrack-config').data['gateway.yaml'] ?? '') as { state: { redis: { sentinels: string[], sentinelName: string, password: string } } }

t.test('Redis survives a node drain and a pod loss: Sentinel over three pods with their own volumes', async (t) => {
  t.equal(redis.spec.replicas, 3)
  t.ok(matches(redis.spec.selector.matchLabels, redisLabels))
  const pvc = redis.spec.volumeClaimTemplates.find((v) => v.metadata.name === 'data')
  t.ok(pvc, 'a PersistentVolumeClaim per pod')
  t.same(pvc?.spec.accessModes, ['ReadWriteOnce'])
  const containers = new Map(redis.spec.template.spec.containers.map((c) => [c.name, c]))
  t.same([...containers.keys()].sort(), ['redis', 'sentinel'], 'a sentinel beside each Redis: three sentinels')
  t.ok(containers.get('redis')?.volumeMounts?.some((m) => m.name === 'data' && m.mountPath === '/data'), 'Redis keeps its data on the claim')
  t.match(scripts['start-redis.sh'], /echo "dir \/data"/)
  t.match(scripts['start-redis.sh'], /echo "appendonly yes"/, 'AOF on')
  t.match(scripts['start-redis.sh'], /requirepass \$REDIS_PASSWORD/)
  t.match(scripts['start-sentinel.sh'], new RegExp(`sentinel monitor ${gatewayConfig.state.redis.sentinelName} \\$MASTER 6379 2`), 'the sentinels watch the master the gateway names, quorum 2')
  const anti = redis.spec.template.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0]
  t.equal(anti?.topologyKey, 'kubernetes.io/hostname', 'one Redis pod per node')
  t.ok(anti !== undefined && matches(anti.labelSelector.matchLabels, redisLabels))
  const pdb = find<Pdb>('PodDisruptionBudget', 'dualtrack-redis')
  t.equal(pdb.spec.maxUnavailable, 1, 'a drain evicts one Redis pod at a time')
  t.ok(matches(pdb.spec.selector.matchLabels, redisLabels))
  const headless = find<Obj & { spec: { clusterIP: string, selector: Record<string, string>, ports: { name: string, port: number }[] } }>('Service', redis.spec.serviceName)
  t.equal(headless.spec.clusterIP, 'None')
  t.ok(matches(headless.spec.selector, redisLabels))
  // the gateway asks the three sentinels by their stable names
  t.same(gatewayConfig.state.redis.sentinels, [0, 1, 2].map((i) => `${redis.metadata.name}-${i}.${redis.spec.serviceName}:26379`))
  t.ok(headless.spec.ports.some((p) => p.port === 26379) && headless.spec.ports.some((p) => p.port === 6379))
})

t.test('one Secret holds the Redis password: Redis reads it, the gateway reads it', async (t) => {
  const secret = find<Obj & { stringData: Record<string, string> }>('Secret', 'dualtrack-redis')
  t.same(Object.keys(secret.stringData), ['REDIS_PASSWORD'])
  const refs = (c: Container | undefined) => (c?.env ?? []).flatMap((e) => e.valueFrom?.secretKeyRef ? [`${e.name}=${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`] : [])
  const byName = new Map(redis.spec.template.spec.containers.map((c) => [c.name, c]))
  t.ok(refs(byName.get('redis')).includes('REDIS_PASSWORD=dualtrack-redis/REDIS_PASSWORD'), 'Redis: requirepass')
  t.ok(refs(byName.get('sentinel')).includes('REDIS_PASSWORD=dualtrack-redis/REDIS_PASSWORD'), 'the sentinels: auth-pass')
  t.ok(refs(gateway.spec.template.spec.containers.find((c) => c.name === 'dualtrack')).includes('REDIS_PASSWORD=dualtrack-redis/REDIS_PASSWORD'), 'the gateway')
  t.equal(gatewayConfig.state.redis.password, '${REDIS_PASSWORD}', 'state.redis.password is that variable')
})

t.test('NetworkPolicies: only gateway pods reach Redis; the admin port only from Prometheus, the operators and the replicas', async (t) => {
  const policies = objects.filter((x) => x.o.kind === 'NetworkPolicy').map((x) => x.o as NetworkPolicy)
  const forRedis = policies.filter((p) => matches(p.spec.podSelector.matchLabels, redisLabels))
  t.equal(forRedis.length, 1, 'one policy selects the Redis pods')
  const rp = forRedis[0] as NetworkPolicy
  t.same(rp.spec.policyTypes, ['Ingress'])
  const peers = rp.spec.ingress.flatMap((r) => r.from ?? [])
  t.ok(rp.spec.ingress.every((r) => (r.from ?? []).length > 0), 'no rule open to every pod')
  t.ok(peers.every((p) => p.namespaceSelector === undefined && p.podSelector !== undefined), 'pods of this namespace only')
  t.ok(peers.every((p) => matches(p.podSelector?.matchLabels ?? {}, gatewayLabels) || matches(p.podSelector?.matchLabels ?? {}, redisLabels)), 'the gateway pods, and the Redis pods for replication')
  t.ok(peers.some((p) => matches(p.podSelector?.matchLabels ?? {}, gatewayLabels)), 'the gateway pods are let in')

  const forGateway = policies.filter((p) => matches(p.spec.podSelector.matchLabels, gatewayLabels))
  t.equal(forGateway.length, 1, 'one policy selects the gateway pods')
  const gp = forGateway[0] as NetworkPolicy
  const adminRules = gp.spec.ingress.filter((r) => (r.ports ?? []).some((p) => p.port === 'admin' || p.port === 9090))
  t.equal(adminRules.length, 1)
  const admin = adminRules[0] as { from?: Peer[] }
  t.ok((admin.from ?? []).length > 0, 'the admin port is not open to all')
  const ns = (admin.from ?? []).map((p) => p.namespaceSelector?.matchLabels['kubernetes.io/metadata.name']).filter(Boolean).sort()
  t.same(ns, ['dualtrack-operators', 'monitoring'], 'Prometheus\'s namespace and the operators\'')
  t.ok((admin.from ?? []).some((p) => p.namespaceSelector?.matchLabels['kubernetes.io/metadata.name'] === 'monitoring' && p.podSelector?.matchLabels['app.kubernetes.io/name'] === 'prometheus'), 'in monitoring, Prometheus only')
  const http = gp.spec.ingress.filter((r) => (r.ports ?? []).some((p) => p.port === 'http' || p.port === 8080))
  t.ok(http.length === 1 && http[0]?.from === undefined, 'the data plane stays open')
  const ports = new Set(gateway.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name)))
  t.ok(ports.has('admin') && ports.has('http'), 'the named ports exist on the gateway pods')
})

t.test('compose has the same shape: a Sentinel setup on a network only the gateway joins', async (t) => {
  interface Svc { networks?: string[], environment?: Record<string, string>, command?: string[] | string }
  const compose = parse(readFileSync(join(ROOT, 'deploy/compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Svc>, networks: Record<string, { internal?: boolean }> }
  t.equal(compose.networks.state?.internal, true)
  const onState = Object.entries(compose.services).filter(([, s]) => (s.networks ?? []).includes('state')).map(([n]) => n).sort()
  t.same(onState, ['gateway', 'redis-0', 'redis-1', 'redis-2', 'sentinel-0', 'sentinel-1', 'sentinel-2'])
  const pw = compose.services['redis-0']?.environment?.REDIS_PASSWORD
  t.match(pw, /^\$\{REDIS_PASSWORD:-/)
  for (const n of ['redis-1', 'redis-2', 'sentinel-0', 'gateway']) t.equal(compose.services[n]?.environment?.REDIS_PASSWORD, pw, `${n} reads the same password`)
  for (const n of ['redis-1', 'redis-2']) t.match(JSON.stringify(compose.services[n]?.command), /--replicaof redis-0 6379/)
  for (const n of ['redis-0', 'redis-1', 'redis-2']) t.match(JSON.stringify(compose.services[n]?.command), /--appendonly yes/)
  const gw = parse(readFileSync(join(ROOT, 'deploy/compose/gateway.yaml'), 'utf8')) as { state: { redis: { sentinels: string[], sentinelName: string } } }
  t.same(gw.state.redis.sentinels, ['sentinel-0:26379', 'sentinel-1:26379', 'sentinel-2:26379'])
  t.match(JSON.stringify(compose.services['sentinel-0']?.command), new RegExp(`sentinel monitor ${gw.state.redis.sentinelName} redis-0 6379 2`))
})
