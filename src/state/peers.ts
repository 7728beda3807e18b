// state.peers: while the store is down, a replica asks the other replicas' admin listeners who owns
// an order (GET /admin/affinity/:orderId, answered from their memory). Every peer is asked at once,
// the first that knows wins, and the whole ask is bounded by timeoutMs: a dead peer costs at most
// that, once, on a request that would otherwise have been routed blind
import { lookup } from 'node:dns/promises'
import { networkInterfaces } from 'node:os'
import { Agent, request } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import type { BackendName } from '../config/index.js'

export const DEFAULT_PEER_TIMEOUT_MS = 50
/** a headless Service's addresses are read again after this long (lazily, on the next ask) */
export const DNS_REFRESH_MS = 5_000

export interface PeersConfig {
  readonly urls?: readonly string[] | undefined
  readonly dns?: string | undefined
  readonly token?: string | undefined
  readonly timeoutMs: number
}

export interface PeerAnswer { readonly owner: BackendName, readonly learnedAt: string | null }

/**
 * the owner one peer knows; clear: every peer said unknown and holds no owner record for the store
 * (or is not there: a refused connection); none: unknown, but some peer still holds records the store
 * has not seen, or did not say; timeout: timeoutMs passed first
 */
export type PeerVerdict = BackendName | 'clear' | 'none' | 'timeout'

export interface Peers {
  readonly timeoutMs: number
  ask (rollout: string, orderId: string): Promise<PeerVerdict>
  /** every request sent to a peer, for metrics and tests */
  readonly asked: { calls: number }
  close (): Promise<void>
}

export function createPeers (cfg: PeersConfig, selfPort: number, log: FastifyBaseLogger): Peers {
  const timeoutMs = cfg.timeoutMs
  // a few warm connections per peer: the ask must not pay a TCP handshake when it can help it
  const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000, connect: { timeout: timeoutMs } })
  const headers: Record<string, string> = cfg.token ? { authorization: `Bearer ${cfg.token}` } : {}
  const fixed = cfg.urls?.map((u) => u.replace(/\/$/, ''))
  let resolved: { at: number, targets: string[] } | undefined
  let resolving: Promise<string[]> | undefined
  const asked = { calls: 0 }

  const resolveDns = (dns: string): Promise<string[]> => {
    resolving ??= (async () => {
      const i = dns.lastIndexOf(':')
      const host = dns.slice(0, i)
      const port = Number(dns.slice(i + 1))
      try {
        const all = await lookup(host, { all: true })
        const own = localAddresses()
        // every address of the Service but this replica's own
        const targets = all.filter((a) => !(port === selfPort && own.has(a.address)))
          .map((a) => `http://${a.family === 6 ? `[${a.address}]` : a.address}:${port}`)
        resolved = { at: Date.now(), targets }
        return targets
      } catch (err) {
        log.warn({ dns: host, err: { message: (err as Error).message } }, 'peer lookup: cannot resolve the peers')
        resolved = { at: Date.now(), targets: resolved?.targets ?? [] }
        return resolved.targets
      } finally {
        resolving = undefined
      }
    })()
    return resolving
  }

  const targets = async (): Promise<string[]> => {
    if (fixed !== undefined) return fixed
    const dns = cfg.dns as string
    if (resolved === undefined) return resolveDns(dns)
    if (Date.now() - resolved.at > DNS_REFRESH_MS) void resolveDns(dns)
    return resolved.targets
  }

  return {
    timeoutMs,
    asked,
    ask (rollout, orderId) {
      return new Promise((resolve) => {
        const ac = new AbortController()
        let left = 0
        // every peer answered "unknown, nothing pending" (or is not listening)
        let clear = true
        let done = false
        const finish = (v: PeerVerdict) => {
          if (done) return
          done = true
          clearTimeout(timer)
          ac.abort()
          resolve(v)
        }
        // the hard bound: whatever the peers (or DNS) do, the request goes on after timeoutMs
        const timer = setTimeout(() => finish('timeout'), timeoutMs)
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
            const body = await res.body.json() as { owner?: unknown }
            if (body.owner === 'new' || body.owner === 'legacy') finish(body.owner)
            else clear = false
          }, (err: { name?: string, code?: string, message?: string }) => {
            if (err.name !== 'AbortError') log.debug({ peer: base, err: { code: err.code, message: err.message }, retry }, 'peer lookup failed')
            // a kept-alive connection to a peer that restarted fails at once: one more try on a fresh one
            if (retry && !done && err.name !== 'AbortError') return one(base, false)
            // nobody listening holds nothing; any other failure says nothing
            if (err.code !== 'ECONNREFUSED') clear = false
          })
        }
        targets().then((list) => {
          if (done) return
          if (list.length === 0) return finish('clear')
          left = list.length
          for (const base of list) {
            one(base, true).catch(() => { clear = false }).finally(() => {
              if (--left === 0) finish(clear ? 'clear' : 'none')
            })
          }
        }, () => finish('none'))
      })
    },
    close: () => agent.close()
  }
}

function localAddresses (): Set<string> {
  const out = new Set<string>()
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) out.add(a.address)
  return out
}
