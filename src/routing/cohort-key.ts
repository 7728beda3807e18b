// cohort keys, region keys and order ids read from a request: header:, cookie:, query:, jwt:
// every reader answers a string or undefined and never throws: a malformed cookie, a garbage
// JWT or a huge header means "absent here", and the next source is tried
import type { IncomingHttpHeaders } from 'node:http'
import { MAX_KEY_BYTES } from './bucket.js'

/** what the routing layer needs of a request: no Fastify types here */
export interface RequestView {
  readonly method: string
  /** path and query, as received */
  readonly url: string
  readonly headers: IncomingHttpHeaders
  /** the peer (an IncomingMessage's socket); read only by the client-ip attribute */
  readonly socket?: { readonly remoteAddress?: string | undefined } | undefined
}

export type KeyReader = (req: RequestView) => string | undefined

export function compileKeySource (spec: string): KeyReader {
  const colon = spec.indexOf(':')
  const kind = spec.slice(0, colon)
  const name = spec.slice(colon + 1)
  switch (kind) {
    case 'header': return headerReader(name.toLowerCase())
    case 'cookie': return cookieReader(name)
    case 'query': return queryReader(name)
    case 'jwt': return jwtReader(name)
    default: throw new TypeError(`unknown key source ${spec}`)
  }
}

/** first source present wins */
export function compileKeySources (specs: readonly string[]): KeyReader {
  return firstPresent(specs.map(compileKeySource))
}

/** one reader from several: the first that finds a value wins (one reader is returned as it is) */
export function firstPresent (readers: readonly KeyReader[]): KeyReader {
  if (readers.length === 1) return readers[0] as KeyReader
  return (req) => {
    for (let i = 0; i < readers.length; i++) {
      const v = (readers[i] as KeyReader)(req)
      if (v !== undefined) return v
    }
    return undefined
  }
}

function usable (v: string | undefined): string | undefined {
  return v === undefined || v.length === 0 || v.length > MAX_KEY_BYTES ? undefined : v
}

function headerReader (name: string): KeyReader {
  return (req) => {
    const v = req.headers[name]
    return usable(typeof v === 'string' ? v.trim() : Array.isArray(v) ? v[0] : undefined)
  }
}

// a targeted scan of the Cookie header for one name (RFC 6265 §4.2.1), not a full parse
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  let i = 0
  const n = header.length
  while (i < n) {
    while (i < n && (header.charCodeAt(i) === 32 || header.charCodeAt(i) === 59)) i++
    const eq = header.indexOf('=', i)
    let end = header.indexOf(';', i)
    if (end === -1) end = n
    if (eq !== -1 && eq < end && header.slice(i, eq).trim() === name) {
      let v = header.slice(eq + 1, end).trim()
      if (v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34) v = v.slice(1, -1)
      return v
    }
    i = end + 1
  }
  return undefined
}

function cookieReader (name: string): KeyReader {
  return (req) => {
    const h = req.headers.cookie
    return usable(readCookie(typeof h === 'string' ? h : undefined, name))
  }
}

// a targeted scan of the query string for one parameter; malformed %-escapes mean absent
export function readQuery (url: string, name: string): string | undefined {
  const q = url.indexOf('?')
  if (q === -1) return undefined
  let i = q + 1
  const n = url.length
  while (i < n) {
    let end = url.indexOf('&', i)
    if (end === -1) end = n
    const eq = url.indexOf('=', i)
    if (eq !== -1 && eq < end && url.slice(i, eq) === name) {
      const raw = url.slice(eq + 1, end)
      if (raw.indexOf('%') === -1 && raw.indexOf('+') === -1) return raw
      try {
        return decodeURIComponent(raw.replace(/\+/g, ' '))
      } catch {
        return undefined
      }
    }
    i = end + 1
  }
  return undefined
}

function queryReader (name: string): KeyReader {
  return (req) => usable(readQuery(req.url, name))
}

// the claim is read from the payload of a Bearer JWT without checking its signature: the backends
// verify tokens; the gateway only needs a stable key to bucket on (documented in the README)
export function readJwtClaim (authorization: string | undefined, claim: string): string | undefined {
  if (authorization === undefined || authorization.length > 16_384) return undefined
  if (!/^bearer /i.test(authorization)) return undefined
  const token = authorization.slice(7).trim()
  const a = token.indexOf('.')
  const b = token.indexOf('.', a + 1)
  if (a <= 0 || b === -1) return undefined
  let payload: unknown
  try {
    payload = JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  if (payload === null || typeof payload !== 'object') return undefined
  const v = (payload as Record<string, unknown>)[claim]
  if (typeof v === 'string') return v
  if (typeof v === 'number' && Number.isFinite(v)) return String(v)
  return undefined
}

function jwtReader (claim: string): KeyReader {
  return (req) => {
    const h = req.headers.authorization
    return usable(readJwtClaim(typeof h === 'string' ? h : undefined, claim))
  }
}
