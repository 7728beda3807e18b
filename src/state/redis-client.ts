// which Redis the store talks to (one server, a Sentinel-watched master, or a Cluster) and how its
// keys are laid out. ioredis does the following: a Sentinel client asks the sentinels for the
// master and moves when they switch it; a Cluster client follows the slot map (DESIGN.md §11)
import { readFileSync } from 'node:fs'
import { Redis, Cluster, type RedisOptions, type ClusterOptions } from 'ioredis'
import type { Config } from '../config/index.js'

export const DEFAULT_COMMAND_TIMEOUT_MS = 500
export const MAX_RETRY_DELAY_MS = 2000
/** Sentinel: an owner write waits this long for one replica to have it */
export const DEFAULT_REPLICA_WAIT_MS = 100

export interface HostPort { readonly host: string, readonly port: number }

export type RedisTarget =
  | { readonly kind: 'server', readonly url: string }
  | { readonly kind: 'sentinel', readonly sentinels: readonly HostPort[], readonly name: string }
  | { readonly kind: 'cluster', readonly nodes: readonly HostPort[] }

export interface RedisTls { readonly servername?: string | undefined, readonly ca?: string | undefined, readonly rejectUnauthorized?: boolean | undefined }

export interface RedisConnection {
  readonly target: RedisTarget
  readonly username?: string | undefined
  readonly password?: string | undefined
  readonly sentinelPassword?: string | undefined
  /** TLS options; a rediss:// url turns TLS on by itself */
  readonly tls?: RedisTls | undefined
  readonly commandTimeoutMs?: number | undefined
}

export type RedisClient = Redis | Cluster

function hostPort (s: string): HostPort {
  const i = s.lastIndexOf(':')
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
}

/** the connection state.redis describes (validated: exactly one of url, sentinels, cluster) */
export function redisConnectionOf (r: Config['state']['redis']): RedisConnection {
  const target: RedisTarget = r.sentinels !== undefined
    ? { kind: 'sentinel', sentinels: r.sentinels.map(hostPort), name: r.sentinelName ?? 'dualtrack' }
    : r.cluster !== undefined
      ? { kind: 'cluster', nodes: r.cluster.map(hostPort) }
      : { kind: 'server', url: r.url ?? 'redis://127.0.0.1:6379' }
  return { target, username: r.username, password: r.password, sentinelPassword: r.sentinelPassword, tls: r.tls }
}

// a CA given as a path is read once; PEM text passes as is
function tlsOptions (tls: RedisTls | undefined): RedisOptions['tls'] {
  if (tls === undefined) return undefined
  const ca = tls.ca === undefined ? undefined : tls.ca.includes('-----BEGIN') ? tls.ca : readFileSync(tls.ca, 'utf8')
  return {
    ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(tls.rejectUnauthorized !== undefined ? { rejectUnauthorized: tls.rejectUnauthorized } : {})
  }
}

/**
 * one ioredis client for c. No offline queue and a short command timeout: a command to a Redis
 * that is down fails at once instead of piling up (DESIGN.md §7); reconnects are capped at 2 s
 */
export function createRedisClient (c: RedisConnection, extra: { autoPipeline?: boolean, autoPipelineIgnore?: string[], commandTimeoutMs?: number | null, retry?: { stepMs: number, maxMs: number } } = {}): RedisClient {
  const step = extra.retry?.stepMs ?? 100
  const max = extra.retry?.maxMs ?? MAX_RETRY_DELAY_MS
  const commandTimeout = extra.commandTimeoutMs === null ? undefined : extra.commandTimeoutMs ?? c.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
  const tls = tlsOptions(c.tls)
  const base: RedisOptions = {
    enableOfflineQueue: false,
    ...(commandTimeout !== undefined ? { commandTimeout } : {}),
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    // reconnect forever, but never faster than every 100 ms nor slower than every 2 s (by default)
    retryStrategy: (times) => Math.min(times * step, max),
    lazyConnect: true,
    ...(c.username !== undefined ? { username: c.username } : {}),
    ...(c.password !== undefined ? { password: c.password } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(extra.autoPipeline === true ? { enableAutoPipelining: true, ...(extra.autoPipelineIgnore !== undefined ? { autoPipeliningIgnoredCommands: extra.autoPipelineIgnore } : {}) } : {})
  }
  const t = c.target
  if (t.kind === 'server') return new Redis(t.url, base)
  if (t.kind === 'sentinel') {
    return new Redis({
      ...base,
      sentinels: t.sentinels.map((s) => ({ ...s })),
      name: t.name,
      role: 'master',
      ...(c.sentinelPassword !== undefined ? { sentinelPassword: c.sentinelPassword } : {}),
      ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      // ioredis' failoverDetector (subscribing to +switch-master) left the affinity connection of a
      // replica on no master after a SIGKILLed master's failover (test/ha/sentinel.test.ts: every
      // lookup fell through), so the clients follow failovers by asking the sentinels when their
      // connection drops, and a master demoted while still answering (a manual failover) is left on
      // its first READONLY reply
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
      sentinelRetryStrategy: (times) => Math.min(times * step, max)
    })
  }
  const { retryStrategy: _r, lazyConnect: _l, enableOfflineQueue: _q, enableAutoPipelining: _a, ...node } = base
  const opts: ClusterOptions = {
    enableOfflineQueue: false,
    lazyConnect: true,
    scaleReads: 'master',
    clusterRetryStrategy: (times) => Math.min(times * step, max),
    // a command for a shard that is gone fails in about 200 ms instead of retrying for seconds:
    // an affinity lookup falls through to the rules, the request does not wait (DESIGN.md §11)
    maxRedirections: 3,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    slotsRefreshTimeout: 1000,
    ...(extra.autoPipeline === true ? { enableAutoPipelining: true } : {}),
    ...(tls !== undefined ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
    redisOptions: node
  }
  return new Cluster(t.nodes.map((n) => ({ ...n })), opts)
}

/** the masters to SCAN: every master of a Cluster, else the one client */
export function mastersOf (client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client]
}

/**
 * the key layout. The state document, its version, the audit list, the change channel and the
 * leases share one hash tag, so that a change is one atomic script on one Cluster slot; affinity
 * keys carry no tag, so a Cluster spreads them over every shard by order id
 */
export function redisKeys (prefix: string) {
  const tag = `{${prefix.replace(/:$/, '') || 'dualtrack'}}`
  return {
    state: `${tag}:state`,
    version: `${tag}:version`,
    audit: `${tag}:audit`,
    channel: `${tag}:changes`,
    lease: `${tag}:lease:`,
    aff: `${prefix}aff:`,
    /** the names before the hash tag (dualtrack ≤ 0.1): copied over once, at start */
    old: { state: `${prefix}state`, version: `${prefix}version`, audit: `${prefix}audit` }
  }
}
