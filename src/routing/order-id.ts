// where a request or an answer names an order: the id sources of affinity (DESIGN.md §1).
// Pure functions compiled once per rollout; every reader answers a string or undefined, never throws
import type { RequestView } from './cohort-key.js'
import { readQuery } from './cohort-key.js'
import { compileXmlText, isXmlType } from './xml-text.js'

export const MAX_ORDER_ID_LENGTH = 256

/** reads an order id from a request (lookup) */
export type LookupReader = (req: RequestView, path: string, body: Buffer | undefined, contentType: string | undefined) => string | undefined
/** reads the id of a new order from an answer (learn) */
export type LearnReader = (headers: Record<string, string | string[] | undefined>, body: Buffer | undefined) => string | undefined

export interface CompiledLookup {
  read: LookupReader
  /** does any source need the request body? */
  readonly needsBody: boolean
}

function ok (v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v)
  if (typeof v !== 'string') return undefined
  const s = v.trim()
  return s.length === 0 || s.length > MAX_ORDER_ID_LENGTH ? undefined : s
}

/** one step of a compiled json: path: an object key or an array index */
export type JsonStep = string | number

const JSON_STEP = /\.([A-Za-z0-9_-]+)|\[(0|[1-9][0-9]{0,5})\]/y

/** json:$.a[0].b -> ['a', 0, 'b'], once at load; throws on anything else (the schema refused it before) */
export function compileJsonPath (spec: string): JsonStep[] {
  const path = spec.startsWith('json:') ? spec.slice('json:'.length) : spec
  if (!path.startsWith('$') || path.length === 1) throw new TypeError(`not a json path: ${spec}`)
  const steps: JsonStep[] = []
  JSON_STEP.lastIndex = 1
  while (JSON_STEP.lastIndex < path.length) {
    const at = JSON_STEP.lastIndex
    const m = JSON_STEP.exec(path)
    if (m === null) throw new TypeError(`not a json path: ${spec} (at "${path.slice(at)}")`)
    steps.push(m[1] !== undefined ? m[1] : Number(m[2]))
  }
  return steps
}

function dig (value: unknown, steps: readonly JsonStep[]): unknown {
  let v = value
  for (const k of steps) {
    if (v === null || typeof v !== 'object') return undefined
    if (typeof k === 'number') {
      if (!Array.isArray(v) || k >= v.length) return undefined
      v = v[k] as unknown
    } else {
      // own keys only: "constructor" or "__proto__" name no order
      if (Array.isArray(v) || !Object.hasOwn(v, k)) return undefined
      v = (v as Record<string, unknown>)[k]
    }
  }
  return v
}

// the text of an xml: element may carry whitespace around the id; longer is not an id
const MAX_XML_TEXT = MAX_ORDER_ID_LENGTH * 4

function xmlReader (name: string): (body: Buffer) => string | undefined {
  const scan = compileXmlText(name, MAX_XML_TEXT)
  return (body) => ok(scan(body).text)
}

// parsed bodies are memoised per buffer: several json: sources read one parse
let lastBody: Buffer | undefined
let lastParsed: unknown
function parseJson (body: Buffer): unknown {
  if (body === lastBody) return lastParsed
  lastBody = body
  try { lastParsed = JSON.parse(body.toString('utf8')) } catch { lastParsed = undefined }
  return lastParsed
}

function parseForm (body: Buffer, name: string): string | undefined {
  try {
    return new URLSearchParams(body.toString('utf8')).get(name) ?? undefined
  } catch {
    return undefined
  }
}

// path:/api/orders/:orderId -> a matcher of whole segments
function pathReader (pattern: string): (path: string) => string | undefined {
  const segs = pattern.split('/')
  const at = segs.findIndex((s) => s.startsWith(':'))
  return (path) => {
    const parts = path.split('/')
    if (parts.length !== segs.length) return undefined
    for (let i = 0; i < segs.length; i++) if (i !== at && !(segs[i] as string).startsWith(':') && segs[i] !== parts[i]) return undefined
    try {
      return decodeURIComponent(parts[at] as string)
    } catch {
      return undefined
    }
  }
}

/** the segments of a route prefix, as route-table matches it: "/" and "" match any path */
function prefixSegments (prefix: string): string[] {
  const p = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  return p === '/' || p === '' ? [''] : p.split('/')
}

/**
 * the lookup sources a request on this route can carry, decided once per route: a path: pattern
 * whose fixed segments contradict the route's prefix never matches there; a body source never
 * sees a body on a route that takes no write method (bodies are read for writes only)
 */
export function lookupSourcesOn (specs: readonly string[], match: { readonly prefix: string, readonly methods?: readonly string[] | undefined }, writeMethods: ReadonlySet<string>): string[] {
  const route = prefixSegments(match.prefix)
  const writes = match.methods === undefined || match.methods.some((m) => writeMethods.has(m))
  return specs.filter((spec) => {
    const colon = spec.indexOf(':')
    const kind = spec.slice(0, colon)
    if (kind === 'json' || kind === 'xml' || kind === 'form') return writes
    if (kind !== 'path') return true
    // the path has the route's segments first, then any; the pattern has exactly its own
    const pattern = spec.slice(colon + 1).split('/')
    if (route.length > pattern.length) return false
    for (let i = 0; i < route.length; i++) {
      const seg = pattern[i] as string
      if (!seg.startsWith(':') && seg !== route[i]) return false
    }
    return true
  })
}

export function compileLookup (specs: readonly string[]): CompiledLookup {
  let needsBody = false
  const readers: LookupReader[] = specs.map((spec) => {
    const colon = spec.indexOf(':')
    const kind = spec.slice(0, colon)
    const name = spec.slice(colon + 1)
    switch (kind) {
      case 'path': {
        const m = pathReader(name)
        return (_req, path) => ok(m(path))
      }
      case 'query': return (req) => ok(readQuery(req.url, name))
      case 'header': {
        const h = name.toLowerCase()
        return (req) => { const v = req.headers[h]; return ok(Array.isArray(v) ? v[0] : v) }
      }
      case 'json': {
        needsBody = true
        const steps = compileJsonPath(spec)
        return (_req, _path, body, ct) => body === undefined || (ct !== undefined && !ct.includes('json')) ? undefined : ok(dig(parseJson(body), steps))
      }
      case 'xml': {
        needsBody = true
        const read = xmlReader(name)
        return (_req, _path, body, ct) => body === undefined || (ct !== undefined && !isXmlType(ct)) ? undefined : read(body)
      }
      case 'form': {
        needsBody = true
        return (_req, _path, body, ct) => body === undefined || ct === undefined || !ct.includes('application/x-www-form-urlencoded') ? undefined : ok(parseForm(body, name))
      }
      default: throw new TypeError(`unknown affinity lookup source ${spec}`)
    }
  })
  return {
    needsBody,
    read (req, path, body, ct) {
      for (const r of readers) {
        const v = r(req, path, body, ct)
        if (v !== undefined) return v
      }
      return undefined
    }
  }
}

const QUOTE = 34
const BACKSLASH = 92

/**
 * the value of one top-level key of a JSON object, scanning the bytes instead of parsing them: a
 * create-order answer usually names its id first, so this stops after a few dozen bytes where
 * JSON.parse would build the whole answer (64 KiB: ~0.3 ms of CPU per order in bench/).
 * Answers `null` when the body is not a plain object or the scan cannot tell: then parse
 */
export function scanTopLevel (body: Buffer, key: string): string | undefined | null {
  const want = Buffer.from(JSON.stringify(key))
  let i = 0
  const n = body.length
  const skipWs = () => { while (i < n && (body[i] === 32 || body[i] === 10 || body[i] === 13 || body[i] === 9)) i++ }
  const skipString = (): boolean => {
    // at a quote: move past the closing one
    i++
    while (i < n) {
      const c = body[i]
      if (c === BACKSLASH) i += 2
      else if (c === QUOTE) { i++; return true }
      else i++
    }
    return false
  }
  const skipValue = (): boolean => {
    skipWs()
    if (body[i] === QUOTE) return skipString()
    let depth = 0
    while (i < n) {
      const c = body[i] as number
      if (c === QUOTE) { if (!skipString()) return false; continue }
      if (c === 123 || c === 91) depth++
      else if (c === 125 || c === 93) { if (depth === 0) return true; depth-- }
      else if (c === 44 && depth === 0) return true
      i++
      if (depth === 0 && (body[i] === 44 || body[i] === 125)) return true
    }
    return false
  }
  skipWs()
  if (body[i] !== 123) return null
  i++
  for (;;) {
    skipWs()
    if (body[i] === 125) return undefined
    if (body[i] !== QUOTE) return null
    const start = i
    if (!skipString()) return null
    const isKey = i - start === want.length && body.compare(want, 0, want.length, start, i) === 0
    skipWs()
    if (body[i] !== 58) return null
    i++
    skipWs()
    if (isKey) {
      const v0 = i
      if (!skipValue()) return null
      const raw = body.subarray(v0, i).toString('utf8').trim()
      try {
        const v = JSON.parse(raw) as unknown
        return typeof v === 'string' || typeof v === 'number' ? ok(v) : undefined
      } catch {
        return null
      }
    }
    if (!skipValue()) return null
    skipWs()
    if (body[i] === 44) { i++; continue }
    if (body[i] === 125) return undefined
    return null
  }
}

export function compileLearn (specs: readonly string[]): LearnReader {
  const readers: LearnReader[] = specs.map((spec) => {
    if (spec.startsWith('json:')) {
      const steps = compileJsonPath(spec)
      const first = steps[0]
      if (steps.length === 1 && typeof first === 'string') {
        return (_h, body) => {
          if (body === undefined) return undefined
          const v = scanTopLevel(body, first)
          return v === null ? ok(dig(parseJson(body), steps)) : v
        }
      }
      return (_h, body) => body === undefined ? undefined : ok(dig(parseJson(body), steps))
    }
    if (spec.startsWith('xml:')) {
      const read = xmlReader(spec.slice('xml:'.length))
      return (h, body) => {
        if (body === undefined) return undefined
        const ct = h['content-type']
        const type = Array.isArray(ct) ? ct[0] : ct
        return type !== undefined && !isXmlType(type) ? undefined : read(body)
      }
    }
    const name = spec.slice('header:'.length).toLowerCase()
    return (h) => {
      const raw = h[name]
      const v = Array.isArray(raw) ? raw[0] : raw
      if (v === undefined) return undefined
      // Location: /api/orders/NW-1 (or a full URL): the id is its last path segment
      if (name === 'location') {
        const path = v.replace(/^[a-z]+:\/\/[^/]+/i, '').split('?')[0] ?? ''
        const last = path.split('/').filter(Boolean).pop()
        try { return ok(last === undefined ? undefined : decodeURIComponent(last)) } catch { return undefined }
      }
      return ok(v)
    }
  })
  return (h, body) => {
    for (const r of readers) {
      const v = r(h, body)
      if (v !== undefined) return v
    }
    return undefined
  }
}
