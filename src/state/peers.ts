// state.peers: while the store is down, a replica asks the other replicas' admin listeners who owns
// an order (GET /admin/affinity/:orderId, answered from their memory). Every peer is asked at once,
// the first that knows wins, and the whole ask is bounded by timeoutMs: a dead peer costs at most
// that, once, on a request that would otherwise have been routed blind.
// dns (a headless Service): its addresses are read at start and again every DNS_REFRESH_MS in the
// background, never on the request path; an ask uses the last list read. Every PENDING_POLL_MS each
// peer's /readyz says how many owner records it holds for the store (one cut off from Redis alone)
import { lookup } from 'node:dns/promises'
import { readFile } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import { Agent, request } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import type { BackendName } from '../config/index.js'

/**
 * the whole ask (state.peers.timeoutMs' default; the schema holds the same number). Sized for a busy
 * peer: its admin listener shares its event loop with its data plane, so its answer waits behind the
 * requests it is serving (bench/peer-lookup.js, README: Peers)
 */
export const DEFAULT_PEER_TIMEOUT_MS = 500
/** a headless Service's addresses (and state.peers.tokenFile) are read again this often */
export const DNS_REFRESH_MS = 5_000
/** at most this many addresses of a Service are asked: an ask is one GET per peer */
export const MAX_PEERS = 32
/**
 * every peer's /readyz is read this often for its `affinityPending`: a peer cut off from the store
 * alone holds owner records the store lacks while this replica's store answers "unknown"
 */
export const PENDING_POLL_MS = 1_000

export interface PeersConfig {
  readonly urls?: readonly string[] | undefined
  readonly dns?: string | undefined
  readonly token?: string | undefined
  /** a file holding the token (a mounted Secret), read again with the addresses: rotation needs no restart */
  readonly tokenFile?: string | undefined
  readonly timeoutMs: number
}

/** what a peer knows: the owner, and when it was recorded (ms since epoch; null when unknown) */
export interface PeerAnswer { readonly owner: BackendName, readonly at: number | null }

/**
 * the owner one peer knows; clear: every peer said unknown and holds no owner record for the store
 * (or is not there: a refused connection); none: unknown, but some peer still holds records the store
 * has not seen, or did not say; timeout: timeoutMs passed first
 */
export type PeerVerdict = PeerAnswer | 'clear' | 'none' | 'timeout'

export interface Peers {
  readonly timeoutMs: number
  ask (rollout: string, orderId: string): Promise<PeerVerdict>
  /** the peers an ask goes to now */
  targets (): readonly string[]
  /** every request sent to a peer, and every DNS read, for metrics and tests */
  readonly asked: { calls: number, resolutions: number }
  /** how many peers said, at the last poll, that they hold owner records the store has not seen */
  pendingPeers (): number
  close (): Promise<void>
}

export interface PeersOptions {
  /** how often dns and tokenFile are read again (tests shorten it) */
  readonly refreshMs?: number
  /** how often the peers' pending counts are read (0: never) */
  readonly pendingPollMs?: number
}

export function createPeers (cfg: PeersConfig, selfPort: number, log: FastifyBaseLogger, opts: PeersOptions = {}): Peers {
  const timeoutMs = cfg.timeoutMs
  // a few warm connections per peer: the ask must not pay a TCP handshake when it can help it
  const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000, connect: { timeout: timeoutMs } })
  let headers: Record<string, string> = cfg.token ? { authorization: `Bearer ${cfg.token}` } : {}
  let list: readonly string[] = cfg.urls?.map((u) => u.replace(/\/$/, '')) ?? []
  const asked = { calls: 0, resolutions: 0 }
  let closed = false

  const resolveDns = async (dns: string): Promise<void> => {
    const i = dns.lastIndexOf(':')
    const host = dns.slice(0, i)
    const port = Number(dns.slice(i + 1))
    asked.resolutions++
    try {
      const all = await lookup(host, { all: true })
      const own = localAddresses()
      // every address of the Service but this replica's own, in a stable order, at most MAX_PEERS
      const next = [...new Set(all.filter((a) => !(port === selfPort && own.has(a.address)))
        .map((a) => `http://${a.family === 6 ? `[${a.address}]` : a.address}:${port}`))].sort().slice(0, MAX_PEERS)
      if (next.join(' ') !== list.join(' ')) log.info({ dns: host, peers: next, truncated: all.length > MAX_PEERS ? all.length : undefined }, 'peer lookup: peers found')
      list = next
    } catch (err) {
      // the last list read stays: a DNS blip does not forget the peers
      log.warn({ dns: host, err: { message: (err as Error).message } }, 'peer lookup: cannot resolve the peers')
    }
  }
  const readToken = async (file: string): Promise<void> => {
    try {
      const token = (await readFile(file, 'utf8')).replace(/\r?\n$/, '')
      if (token.length > 0) headers = { authorization: `Bearer ${token}` }
    } catch (err) {
      log.warn({ file, err: { message: (err as Error).message } }, 'peer lookup: token file unreadable, the previous token stays')
    }
  }
  let refreshing: Promise<void> | undefined
  const refresh = (): Promise<void> => {
    // one refresh at a time: a slow resolver never piles up lookups
    refreshing ??= Promise.all([
      cfg.dns !== undefined ? resolveDns(cfg.dns) : undefined,
      cfg.tokenFile !== undefined ? readToken(cfg.tokenFile) : undefined
    ]).then(() => { refreshing = undefined })
    return refreshing
  }
  let timer: NodeJS.Timeout | undefined
  // the first read starts now (at load); an ask made before it ends waits for it, within its bound
  let first: Promise<void> | undefined
  if (cfg.dns !== undefined || cfg.tokenFile !== undefined) {
    first = refresh().then(() => { first = undefined })
    timer = setInterval(() => { if (!closed) void refresh() }, opts.refreshMs ?? DNS_REFRESH_MS)
    timer.unref()
  }

  const askAll = (rollout: string, orderId: string): Promise<PeerVerdict> => new Promise((resolve) => {
    const ac = new AbortController()
    let left = 0
    // every peer answered "unknown, nothing pending" (or is not listening)
    let clear = true
    let done = false
    const finish = (v: PeerVerdict) => {
      if (done) return
      done = true
      clearTimeout(bound)
      ac.abort()
      resolve(v)
    }
    // the hard bound: whatever the peers (or the first DNS read) do, the request goes on after timeoutMs
    const bound = setTimeout(() => finish('timeout'), timeoutMs)
    const path = `/admin/affinity/${encodeURIComponent(orderId)}?rollout=${encodeURIComponent(rollout)}`
    const one = (base: string, retry: boolean): Promise<void> => {
      asked.calls++
      return request(base + path, { dispatcher: agent, signal: ac.signal, headers }).then(async (res) => {
        if (res.statusCode === 404) {
          const body = await res.body.json().catch(() => ({})) as { pending?: unknown }
          // a peer too old to say what it holds is not taken for one that holds nothing
          if (body.pending !== 0) clear = false
          return
        }
        if (res.statusCode !== 200) {
          clear = false
          log.warn({ peer: base, status: res.statusCode }, 'peer lookup refused')
          await res.body.dump()
          return
        }
        const body = await res.body.json() as { owner?: unknown, learnedAt?: unknown }
        if (body.owner === 'new' || body.owner === 'legacy') finish({ owner: body.owner, at: parseAt(body.learnedAt) })
        else clear = false
      }, (err: { name?: string, code?: string, message?: string }) => {
        if (err.name !== 'AbortError') log.debug({ peer: base, err: { code: err.code, message: err.message }, retry }, 'peer lookup failed')
        // a kept-alive connection to a peer that restarted fails at once: one more try on a fresh one
        if (retry && !done && err.name !== 'AbortError') return one(base, false)
        // nobody listening holds nothing; any other failure says nothing
        if (err.code !== 'ECONNREFUSED') clear = false
      })
    }
    const go = () => {
      if (done) return
      const targets = list
      if (targets.length === 0) return finish('clear')
      left = targets.length
      for (const base of targets) {
        one(base, true).catch(() => { clear = false }).finally(() => {
          if (--left === 0) finish(clear ? 'clear' : 'none')
        })
      }
    }
    if (first === undefined) go()
    else void first.then(go)
  })

  // the pending watch: one small GET per peer a second, in the background; a peer that does not
  // answer in time holds nothing we could reach anyway
  let pendingPeers = 0
  let polling = false
  const poll = async (): Promise<void> => {
    if (polling || closed) return
    polling = true
    try {
      const counts = await Promise.all(list.map((base) => request(base + '/readyz', { dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) })
        .then(async (res) => {
          const body = await res.body.json().catch(() => ({})) as { affinityPending?: unknown }
          return typeof body.affinityPending === 'number' ? body.affinityPending : 0
        }, () => 0)))
      pendingPeers = counts.filter((n) => n > 0).length
    } finally {
      polling = false
    }
  }
  const pollMs = opts.pendingPollMs ?? PENDING_POLL_MS
  const watch = pollMs > 0 ? setInterval(() => { void poll() }, pollMs) : undefined
  watch?.unref()

  return {
    timeoutMs,
    asked,
    ask: askAll,
    targets: () => list,
    pendingPeers: () => pendingPeers,
    close: () => {
      closed = true
      clearInterval(timer)
      clearInterval(watch)
      return agent.close()
    }
  }
}

function parseAt (v: unknown): number | null {
  if (typeof v !== 'string') return null
  const at = Date.parse(v)
  return Number.isFinite(at) && at > 0 ? at : null
}

function localAddresses (): Set<string> {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) out.add(a.address)
  return out
}
