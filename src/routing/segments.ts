// segments (DESIGN.md §8): user groups by rule, compiled at load into closures over pre-parsed
// values (dates, numbers, semvers, CIDR BlockLists, Sets), so a request pays for the conditions
// it reaches and nothing else; attributes are read lazily, once per request, when a condition
// needs them
import { BlockList } from 'node:net'
import semver from 'semver'
import type { BackendName, ConditionSpec, Operator } from '../config/index.js'
import { comparePlainSemver, parseCidr, parseDate, parseIp, parseNumber, parseSemver } from '../config/index.js'
import { thresholdOf } from './bucket.js'
import { compileKeySource, firstPresent, type KeyReader, type RequestView } from './cohort-key.js'

export interface SegmentSpec {
  readonly name: string
  readonly when: readonly ConditionSpec[]
  readonly percent?: number | undefined
  readonly backend?: BackendName | undefined
}

/** a value test: true, false, or undefined when the attribute does not parse for this operator */
type Test = (v: string) => boolean | undefined

interface CompiledCondition {
  readonly spec: ConditionSpec
  /** index into the rollout's attributes */
  readonly attr: number
  readonly raw: Test
  /** raw with `inverted` applied; unparseable is false either way */
  readonly test: (v: string) => boolean
}

export interface CompiledSegment {
  readonly name: string
  readonly conditions: readonly CompiledCondition[]
  /** a fixed system, or undefined for a percent segment */
  readonly backend: BackendName | undefined
  /** new iff bucket < threshold (percent segments; updated by the run-time state) */
  threshold: number
}

export interface CompiledSegments {
  readonly list: readonly CompiledSegment[]
  readonly attributes: readonly string[]
  readonly readers: readonly KeyReader[]
  // the attributes of the request in hand, read at most once each (the event loop is single-threaded):
  // values[i] is this request's when read[i] is the request's number, `gen`, so that nothing is
  // cleared per request
  readonly values: (string | undefined)[]
  readonly read: Uint32Array
  gen: number
}

/** an address matcher from CIDRs and addresses (the caller checked them at load) */
export function compileCidrs (cidrs: readonly (string | number)[]): (ip: string) => boolean {
  if (cidrs.length === 0) return () => false
  const list = new BlockList()
  for (const c of cidrs) {
    const p = parseCidr(c)
    if (p === undefined) throw new TypeError(`not a CIDR: ${c}`)
    list.addSubnet(p.address, p.prefix, p.family)
  }
  return (ip) => {
    const p = parseIp(ip)
    return p !== undefined && list.check(p.address, p.family)
  }
}

/**
 * the client's address: the peer, or, when the peer is a trusted proxy, the nearest
 * x-forwarded-for hop that is not one (hops a client wrote itself are never believed)
 */
export function clientIpReader (trusted: (ip: string) => boolean): KeyReader {
  return (req) => {
    const peer = parseIp(req.socket?.remoteAddress ?? '')
    if (peer === undefined) return undefined
    let ip = peer.address
    if (!trusted(ip)) return ip
    const xff = req.headers['x-forwarded-for']
    if (xff === undefined) return ip
    const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',')
    for (let i = hops.length - 1; i >= 0; i--) {
      const h = parseIp(hops[i] as string)
      // a hop that is not an address: the client's own junk, so the address is unknown
      if (h === undefined) return undefined
      ip = h.address
      if (!trusted(ip)) return ip
    }
    return ip
  }
}

function compileAttribute (sources: readonly string[], trusted: (ip: string) => boolean): KeyReader {
  return firstPresent(sources.map((s) => s === 'client-ip' ? clientIpReader(trusted) : compileKeySource(s)))
}

const str = (v: string | number) => String(v)

function compileTest (c: ConditionSpec): Test {
  const ci = c.caseInsensitive === true
  const fold = ci ? (s: string) => s.toLowerCase() : (s: string) => s
  const list = (c.values ?? []).map((v) => fold(str(v)))
  const one = c.value ?? ''
  const op: Operator = c.op
  switch (op) {
    case 'IN': { const set = new Set(list); return (v) => set.has(fold(v)) }
    case 'NOT_IN': { const set = new Set(list); return (v) => !set.has(fold(v)) }
    case 'STR_CONTAINS': return (v) => { const s = fold(v); return list.some((x) => s.includes(x)) }
    case 'STR_STARTS_WITH': return (v) => { const s = fold(v); return list.some((x) => s.startsWith(x)) }
    case 'STR_ENDS_WITH': return (v) => { const s = fold(v); return list.some((x) => s.endsWith(x)) }
    case 'NUM_EQ': case 'NUM_GT': case 'NUM_GTE': case 'NUM_LT': case 'NUM_LTE': {
      const t = parseNumber(one) as number
      const cmp = op === 'NUM_EQ' ? (n: number) => n === t : op === 'NUM_GT' ? (n: number) => n > t : op === 'NUM_GTE' ? (n: number) => n >= t : op === 'NUM_LT' ? (n: number) => n < t : (n: number) => n <= t
      return (v) => { const n = parseNumber(v); return n === undefined ? undefined : cmp(n) }
    }
    case 'DATE_AFTER': case 'DATE_BEFORE': {
      const t = parseDate(one) as number
      return op === 'DATE_AFTER'
        ? (v) => { const d = parseDate(v); return d === undefined ? undefined : d > t }
        : (v) => { const d = parseDate(v); return d === undefined ? undefined : d < t }
    }
    case 'SEMVER_EQ': case 'SEMVER_GT': case 'SEMVER_LT': {
      const t = parseSemver(one) as semver.SemVer
      const want = op === 'SEMVER_EQ' ? 0 : op === 'SEMVER_GT' ? 1 : -1
      return (v) => {
        const c = comparePlainSemver(v, t)
        if (c !== undefined) return c === want
        const s = parseSemver(v)
        return s === undefined ? undefined : semver.compare(s, t) === want
      }
    }
    case 'REGEX': {
      const re = new RegExp(str(one), ci ? 'i' : '')
      return (v) => re.test(v)
    }
    case 'IN_CIDR': {
      const within = compileCidrs(c.values ?? [])
      return (v) => parseIp(v) === undefined ? undefined : within(v)
    }
  }
}

function compileCondition (c: ConditionSpec, attr: number): CompiledCondition {
  const raw = compileTest(c)
  // a segment never catches a user it cannot see: unparseable is false even when inverted
  const test = c.inverted === true
    ? (v: string) => { const r = raw(v); return r === undefined ? false : !r }
    : (v: string) => raw(v) === true
  return { spec: c, attr, raw, test }
}

/** undefined when the rollout has no segments: the request path then skips them with one check */
export function compileSegments (attributes: Readonly<Record<string, readonly string[]>> | undefined, specs: readonly SegmentSpec[] | undefined, trusted: (ip: string) => boolean): CompiledSegments | undefined {
  if (specs === undefined || specs.length === 0) return undefined
  const names = Object.keys(attributes ?? {})
  const readers = names.map((n) => compileAttribute((attributes as Record<string, readonly string[]>)[n] as string[], trusted))
  const list = specs.map((s): CompiledSegment => ({
    name: s.name,
    conditions: s.when.map((c) => {
      const i = names.indexOf(c.attribute)
      if (i === -1) throw new TypeError(`segment ${s.name}: no attribute named ${c.attribute}`)
      return compileCondition(c, i)
    }),
    backend: s.backend,
    threshold: s.backend === undefined ? thresholdOf(s.percent ?? 0) : 0
  }))
  return { list, attributes: names, readers, values: new Array<string | undefined>(names.length).fill(undefined), read: new Uint32Array(names.length), gen: 0 }
}

/** set the percent segments' thresholds from the run-time state (a name it lacks keeps the YAML's) */
export function applySegmentPercents (cs: CompiledSegments, percents: Readonly<Record<string, number>>, yaml: readonly SegmentSpec[]): void {
  for (const s of cs.list) {
    if (s.backend !== undefined) continue
    const p = percents[s.name] ?? yaml.find((y) => y.name === s.name)?.percent ?? 0
    s.threshold = thresholdOf(p)
  }
}

// the loop shared by the request path (req given: attributes read on demand) and the
// explain with given values (req undefined: every value already in place)
function scan (cs: CompiledSegments, req: RequestView | undefined): CompiledSegment | undefined {
  const list = cs.list
  const values = cs.values
  const read = cs.read
  const gen = cs.gen
  for (let s = 0; s < list.length; s++) {
    const conds = (list[s] as CompiledSegment).conditions
    let ok = true
    for (let c = 0; c < conds.length; c++) {
      const cond = conds[c] as CompiledCondition
      const i = cond.attr
      if (read[i] !== gen) {
        values[i] = req === undefined ? undefined : (cs.readers[i] as KeyReader)(req)
        read[i] = gen
      }
      const v = values[i]
      if (v === undefined || !cond.test(v)) { ok = false; break }
    }
    if (ok) return list[s]
  }
  return undefined
}

/** the first segment whose conditions all hold for this request */
export function matchSegment (cs: CompiledSegments, req: RequestView): CompiledSegment | undefined {
  nextRequest(cs)
  return scan(cs, req)
}

// a new request number; after 2^32 - 1 of them the marks start again from a cleared slate
function nextRequest (cs: CompiledSegments): void {
  if (cs.gen === 0xffff_ffff) { cs.read.fill(0); cs.gen = 0 }
  cs.gen++
}

/** the first segment whose conditions all hold for these attribute values */
export function matchValues (cs: CompiledSegments, values: readonly (string | undefined)[]): CompiledSegment | undefined {
  nextRequest(cs)
  for (let i = 0; i < cs.attributes.length; i++) { cs.values[i] = values[i]; cs.read[i] = cs.gen }
  return scan(cs, undefined)
}

/** every attribute of a request, read (the explain playground shows them all) */
export function readAttributes (cs: CompiledSegments, req: RequestView): (string | undefined)[] {
  return cs.readers.map((r) => r(req))
}

export interface SegmentTrace {
  readonly segment: string
  readonly matched: boolean
  /** the first condition that did not hold, and why */
  readonly failed?: { readonly attribute: string, readonly op: Operator, readonly inverted: boolean, readonly value: string | null, readonly why: 'missing' | 'unparseable' | 'false' }
}

/** why each segment matched or not, up to the first that matched (for people, not the request path) */
export function traceSegments (cs: CompiledSegments, values: readonly (string | undefined)[]): SegmentTrace[] {
  const out: SegmentTrace[] = []
  for (const s of cs.list) {
    let failed: SegmentTrace['failed']
    for (const c of s.conditions) {
      const v = values[c.attr]
      const base = { attribute: c.spec.attribute, op: c.spec.op, inverted: c.spec.inverted === true, value: v ?? null }
      if (v === undefined) { failed = { ...base, why: 'missing' }; break }
      if (c.raw(v) === undefined) { failed = { ...base, why: 'unparseable' }; break }
      if (!c.test(v)) { failed = { ...base, why: 'false' }; break }
    }
    out.push(failed === undefined ? { segment: s.name, matched: true } : { segment: s.name, matched: false, failed })
    if (failed === undefined) break
  }
  return out
}
