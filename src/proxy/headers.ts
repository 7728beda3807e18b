// request and response header rewriting (RFC 9110 §7.6.1): hop-by-hop headers and the headers
// named in Connection are dropped; x-forwarded-for is appended only behind trusted proxies;
// client-sent x-dualtrack-* headers are never passed on
import { BlockList, isIPv6 } from 'node:net'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade',
  // undici refuses `expect`; the gateway answers 100-continue itself
  'expect',
  // the backend's own host is set by the client; the original one goes in x-forwarded-host
  'host'
])

export interface TrustedProxies { has(address: string | undefined): boolean }

export function compileTrustedProxies (cidrs: readonly string[]): TrustedProxies {
  if (cidrs.length === 0) return { has: () => false }
  const list = new BlockList()
  for (const c of cidrs) {
    const [addr, bits] = c.split('/')
    const type = isIPv6(addr as string) ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(addr as string, type)
    else list.addSubnet(addr as string, Number(bits), type)
  }
  return {
    has (address) {
      if (address === undefined) return false
      const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
      return list.check(v4, isIPv6(v4) ? 'ipv6' : 'ipv4')
    }
  }
}

function connectionTokens (value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined
  const s = Array.isArray(value) ? value.join(',') : value
  const out = new Set<string>()
  for (const t of s.split(',')) {
    const k = t.trim().toLowerCase()
    if (k) out.add(k)
  }
  return out.size ? out : undefined
}

/** headers for the upstream request */
export function upstreamRequestHeaders (
  inbound: IncomingHttpHeaders, remote: string | undefined, trusted: TrustedProxies, proto: string
): Record<string, string | string[]> {
  const named = connectionTokens(inbound.connection)
  const out: Record<string, string | string[]> = {}
  for (const name in inbound) {
    if (HOP_BY_HOP.has(name)) continue
    // x-dualtrack-* (a cheap first-char test before the prefix test)
    if (name.charCodeAt(0) === 120 && name.startsWith('x-dualtrack-')) continue
    if (named !== undefined && named.has(name)) continue
    const v = inbound[name]
    if (v !== undefined) out[name] = v
  }
  const prior = inbound['x-forwarded-for']
  const client = remote === undefined ? '' : remote.startsWith('::ffff:') ? remote.slice(7) : remote
  out['x-forwarded-for'] = prior !== undefined && trusted.has(remote)
    ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}`
    : client
  if (inbound.host !== undefined && !(trusted.has(remote) && inbound['x-forwarded-host'] !== undefined)) out['x-forwarded-host'] = inbound.host
  if (!(trusted.has(remote) && inbound['x-forwarded-proto'] !== undefined)) out['x-forwarded-proto'] = proto
  return out
}

/** headers for the client's answer */
export function clientResponseHeaders (upstream: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const named = connectionTokens(upstream.connection)
  const out: OutgoingHttpHeaders = {}
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) && name !== 'host') continue
    if (named !== undefined && named.has(name)) continue
    const v = upstream[name]
    if (v !== undefined) out[name] = v
  }
  return out
}
