// a Redis Cluster failover under traffic: three masters with one replica each on loopback
// (cluster-node-timeout 1 s), two gateway processes in Cluster mode under a steady stream of
// order -> payment -> callback; the master holding the state slot (and a third of the owners) is
// SIGKILLed and its replica promoted by the cluster itself. No client request fails, owners
// recorded before the kill are found on the promoted replica by the gateway that never saw them,
// a state change made during the failover and the owners refused meanwhile reach the store, and a
// rollback after it reaches both gateways
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { Redis } from 'ioredis'
import { tempDir } from '../helpers/gateway.js'
import { spawnGateway, type GatewayProcess } from '../helpers/process.js'
import { call, OPERATOR, VIEWER } from '../helpers/admin.js'
import { startCluster, clusterNodes, keySlot, type ClusterNode } from '../helpers/redis-ha.js'
import { startOrderSystem, orderYaml, reasonOf, createOrders, callbacksOffOwner, orderFlows, type OrderSystem } from '../helpers/order-system.js'
import { waitFor } from '../helpers/wait.js'

async function metrics (g: GatewayProcess): Promise<string> {
  const r = await request(g.adminUrl + '/metrics')
  return await r.body.text()
}

function metric (text: string, line: RegExp): number {
  const m = text.split('\n').find((l) => line.test(l))
  // NaN when the series is missing: an assertion on it fails instead of passing on nothing
  return m === undefined ? NaN : Number(m.split(' ').at(-1))
}

const affinity = (op: string, result: string) => new RegExp(`^dualtrack_affinity_total\\{rollout="checkout",op="${op}",result="${result}"\\}`)

// a plain connection to one node, closed by the caller
async function node (port: number): Promise<Redis> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  c.on('error', () => {})
  await c.connect()
  return c
}

const serves = (n: ClusterNode, slot: number) => n.slots.some(([a, b]) => slot >= a && slot <= b)

t.test('a Redis Cluster failover (three masters, one replica each) under order -> payment -> callback traffic', async (t) => {
  const cluster = await startCluster(t, 3, { replicas: 1 })
  const systems: Record<'legacy' | 'new', OrderSystem> = { legacy: await startOrderSystem('legacy', t), new: await startOrderSystem('new', t) }
  const dir = tempDir()
  const prefix = `cf${process.pid}:`
  const affKey = (id: string) => `${prefix}aff:checkout:${id}`
  const gateways: GatewayProcess[] = []
  for (let i = 0; i < 2; i++) {
    const file = join(dir, `gateway-${i}.yaml`)
    const state = `state:\n  store: redis\n  file: "${join(dir, `cache-${i}.json`)}"\n  redis:\n    cluster: [${cluster.addrs.map((a) => `"${a}"`).join(', ')}]\n    prefix: "${prefix}"`
    writeFileSync(file, orderYaml(systems.legacy.url, systems.new.url, state, { operator: OPERATOR, viewer: VIEWER }))
    gateways.push(await spawnGateway(file, t))
  }
  const [a, b] = gateways as [GatewayProcess, GatewayProcess]
  for (const g of gateways) await waitFor(async () => (await call(g.adminUrl, 'GET', '/readyz')).body.storeUp === true, { what: 'the gateway on the cluster' })

  // the victim: the master serving the state's slot (the state document, its version, the audit and
  // the change channel), so that state changes as well as a third of the owners must find its replica
  const first = cluster.nodes[0] as (typeof cluster.nodes)[number]
  const stateSlot = await keySlot(first.port, `{${prefix.replace(/:$/, '')}}:state`)
  const topology = await clusterNodes(first.port)
  const victimNode = topology.find((n) => n.role === 'master' && serves(n, stateSlot))
  t.ok(victimNode, `a master serves the state slot ${stateSlot}`)
  const heir = topology.find((n) => n.role === 'replica' && n.masterId === victimNode?.id)
  t.ok(heir, 'the master has a replica')
  if (victimNode === undefined || heir === undefined) return
  const victim = cluster.nodes.find((n) => n.port === victimNode.port) as (typeof cluster.nodes)[number]
  t.equal(topology.filter((n) => n.role === 'master').length, 3)
  t.equal(topology.filter((n) => n.role === 'replica').length, 3)

  // orders created through gateway a before the kill; their callbacks go through b afterwards,
  // which has never seen them: only the store (for a third of them, the promoted replica) knows
  // their owner
  const before = await createOrders(t, a.url, 200)
  t.ok(new Set(before.values()).size === 2, 'orders on both systems')
  const onVictim: string[] = []
  const v = await node(victim.port)
  try {
    for (const id of before.keys()) if (serves(victimNode, Number(await v.call('CLUSTER', 'KEYSLOT', affKey(id))))) onVictim.push(id)
  } finally {
    v.disconnect()
  }
  t.ok(onVictim.length > 0 && onVictim.length < before.size, `${onVictim.length} of ${before.size} owners on the master to kill`)

  // a probe owner on the victim's shard, written by the test: neither gateway holds it in memory,
  // so GET /admin/affinity/<probe> answers only once that gateway reads the shard again
  let probe = ''
  for (let i = 0; probe === ''; i++) if (serves(victimNode, await keySlot(first.port, affKey(`probe-${i}`)))) probe = `probe-${i}`
  const pv = await node(victim.port)
  try {
    t.equal(await pv.set(affKey(probe), `new ${Date.now()}`, 'PX', 86_400_000), 'OK')
  } finally {
    pv.disconnect()
  }
  for (const g of gateways) t.equal((await call(g.adminUrl, 'GET', `/admin/affinity/${probe}`, VIEWER)).status, 200, 'the probe is readable before the kill')

  // the cluster's replication is asynchronous and the gateway does not WAIT in Cluster mode: the
  // owners survive the kill once the replica holds them, so wait for that (read on the replica)
  await waitFor(async () => {
    const r = await node(heir.port)
    try {
      await r.call('READONLY')
      const p = r.pipeline()
      for (const id of [...onVictim, probe]) p.exists(affKey(id))
      const res = await p.exec() ?? []
      return res.every(([err, n]) => err === null && n === 1)
    } finally {
      r.disconnect()
    }
  }, { what: 'the replica to hold every owner of its master', timeoutMs: 30_000, intervalMs: 100 })

  // steady traffic through both gateways (order -> payment -> callback)
  const traffic = orderFlows(gateways.map((g) => g.url), 180_000)
  const flows = traffic.counts
  await waitFor(() => flows.done >= 40, { what: '40 flows before the kill', timeoutMs: 60_000 })

  const killedAt = performance.now()
  await victim.kill()
  // a state change while the state's shard is gone: applied on this gateway, not stored yet
  const during = await call(a.adminUrl, 'PUT', '/admin/rollouts/checkout', OPERATOR, { percent: 30 })
  t.equal(during.status, 200, 'a change during the failover is accepted')
  // promoted: the replica says it is a master serving the state slot
  const survivor = cluster.nodes.find((n) => n.port !== victim.port && n.port !== heir.port) as (typeof cluster.nodes)[number]
  await waitFor(async () => {
    const me = (await clusterNodes(heir.port)).find((n) => n.id === heir.id)
    return me !== undefined && me.role === 'master' && serves(me, stateSlot)
  }, { what: 'the cluster to promote the replica', timeoutMs: 60_000, intervalMs: 50 })
  const failoverMs = performance.now() - killedAt
  // and the other nodes agree (the gateways learn the slot map from any of them)
  await waitFor(async () => {
    const seen = await clusterNodes(survivor.port)
    return seen.find((n) => n.id === heir.id)?.role === 'master' && seen.find((n) => n.id === victimNode.id)?.failing === true
  }, { what: 'another master to see the replica promoted and the old master failed', timeoutMs: 60_000, intervalMs: 50 })
  // recovered: both gateways read the probe owner from the promoted replica
  await waitFor(async () => {
    for (const g of gateways) if ((await call(g.adminUrl, 'GET', `/admin/affinity/${probe}`, VIEWER)).status !== 200) return false
    return true
  }, { what: 'both gateways reading the failed-over shard', timeoutMs: 60_000, intervalMs: 50 }).catch((err: Error) => {
    for (const g of gateways) t.comment(g.output().split('\n').filter((l) => !l.includes('"msg":"request"')).slice(-15).join('\n'))
    throw err
  })
  const recoveryMs = performance.now() - killedAt
  traffic.markFailedOver()
  await waitFor(() => flows.afterFailover >= 40, { what: '40 flows after the failover', timeoutMs: 90_000 })
  await traffic.stop()
  t.same(traffic.failures, [], `no client request failed in ${flows.done} flows (${flows.done * 3} requests), ${flows.afterFailover} after the failover`)

  // the change made while the shard was gone reaches the other gateway once the shard is back
  type State = { store: { pending: number }, rollouts: { checkout: { percent: number } } }
  await waitFor(async () => ((await call(b.adminUrl, 'GET', '/admin/state', VIEWER)).body as unknown as State).rollouts.checkout.percent === 30,
    { what: 'the change made during the failover on the other gateway', timeoutMs: 30_000 })
  const changeMs = performance.now() - killedAt
  await waitFor(async () => ((await call(a.adminUrl, 'GET', '/admin/state', VIEWER)).body as unknown as State).store.pending === 0,
    { what: 'nothing left waiting on the gateway that made the change' })

  // owners refused while the shard was gone waited in memory and reach the store once it is back
  for (const g of gateways) {
    await waitFor(async () => metric(await metrics(g), /^dualtrack_affinity_pending /) === 0, { what: 'no owner record left waiting for the store', timeoutMs: 60_000 })
  }

  // the owners recorded before the kill survived it, and the gateway that never saw them finds them
  const wrong = await callbacksOffOwner(b.url, before)
  t.same(wrong, [], `all ${before.size} callbacks for orders created before the kill (${onVictim.length} of them on the killed master) reached their owner through the other gateway`)
  const one = onVictim[0] as string
  t.match((await call(b.adminUrl, 'GET', `/admin/affinity/${one}`, VIEWER)).body, { orderId: one, owner: before.get(one), learnedAt: /^\d{4}-\d\d-\d\dT/ }, 'an owner of the killed master, read from its replica')

  // a rollback issued after the failover is stored on the promoted replica and reaches both gateways
  const sent = performance.now()
  const rb = await call(a.adminUrl, 'POST', '/admin/rollback', OPERATOR, { reason: 'after the failover', rollout: 'checkout' })
  t.equal(rb.status, 200)
  t.equal(rb.body.propagated, true, 'stored on the promoted replica')
  await waitFor(async () => (await reasonOf(a.url)) === 'rollback' && (await reasonOf(b.url)) === 'rollback', { what: 'the rollback on both gateways', timeoutMs: 15_000, intervalMs: 5 })
  const propagationMs = performance.now() - sent
  const m = await Promise.all(gateways.map(metrics))
  const sum = (re: RegExp) => m.reduce((x, text) => x + metric(text, re), 0)
  t.comment(`cluster failover: the replica was promoted ${failoverMs.toFixed(0)} ms after SIGKILL (cluster-node-timeout 1000 ms); ` +
    `both gateways read the shard again after ${recoveryMs.toFixed(0)} ms; ` +
    `the change made during the failover (propagated: ${String(during.body.propagated)}) was on the other gateway after ${changeMs.toFixed(0)} ms; rollback on both gateways ${propagationMs.toFixed(1)} ms after it was sent; ` +
    `${flows.done} flows, 0 failed; lookups that fell back on memory or the rules: ${sum(affinity('lookup', 'error'))}; ` +
    `owner records refused then written later: ${sum(affinity('record', 'record_error'))}/${sum(affinity('record', 'flushed'))}`)
})
