// compare a primary answer with its shadow copy: status, chosen headers, JSON bodies field by field
// (DESIGN.md §4). pure logic: no Fastify, no I/O. field paths are templated so they can be metric labels
import { DUALTRACK_ERR_CONFIG_INVALID } from '../errors.js'

/** one side of a comparison: what a backend answered */
export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** `fields`: templated paths that differ (`status`, `header:<name>`, `$.items[*].price`), sorted, deduped */
export interface CompareResult {
  equal: boolean
  fields: string[]
}

/** how answers are compared; `ignore` paths use the template syntax (`$.items[*].id`) */
export interface CompareOptions {
  ignore: readonly string[]
  headers: readonly string[]
  /** relative: numbers match when |a - b| <= tolerance * max(1, |a|, |b|) */
  numericTolerance: number
  /** compare arrays as multisets instead of index by index */
  unorderedArrays: boolean
  /** distinct fields reported per comparison; past it a final `(more)` is added */
  maxFields?: number
}

export interface Comparer {
  compare (primary: Answer, shadow: Answer): CompareResult
}

export const DEFAULT_MAX_FIELDS = 50
/** the last field of a capped result */
export const MORE_FIELD = '(more)'

/** a compiled set of template paths: one trie, walked alongside the JSON value */
export interface PathNode {
  /** a configured path ends here: the whole subtree matches */
  end: boolean
  keys: Map<string, PathNode>
  /** `[*]`: any array element or object key */
  any: PathNode | undefined
}

const IDENT = /^[A-Za-z_$][\w$]*$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DIGITS = /^\d+$/
const MAX_KEY_LENGTH = 64

function newNode (): PathNode {
  return { end: false, keys: new Map(), any: undefined }
}

/**
 * parse template paths (`$`, `.name`, `["any key"]`, `[*]`) into one trie; a bad path throws
 * DUALTRACK_ERR_CONFIG_INVALID
 */
export function compilePaths (paths: readonly string[]): PathNode {
  const root = newNode()
  for (const path of paths) {
    if (path[0] !== '$') throw badPath(path, 'must start with $')
    let node = root
    let i = 1
    while (i < path.length) {
      let next: PathNode | undefined
      if (path.startsWith('[*]', i)) {
        next = node.any ??= newNode()
        i += 3
      } else if (path[i] === '.') {
        let j = i + 1
        while (j < path.length && path[j] !== '.' && path[j] !== '[') j++
        if (j === i + 1) throw badPath(path, `empty key at ${i}`)
        next = child(node, path.slice(i + 1, j))
        i = j
      } else if (path.startsWith('["', i)) {
        const close = quotedEnd(path, i + 1)
        if (close < 0 || path[close + 1] !== ']') throw badPath(path, `unterminated ["key"] at ${i}`)
        let key: unknown
        try {
          key = JSON.parse(path.slice(i + 1, close + 1))
        } catch {
          throw badPath(path, `bad ["key"] at ${i}`)
        }
        next = child(node, key as string)
        i = close + 2
      } else {
        throw badPath(path, `unexpected ${JSON.stringify(path[i])} at ${i}`)
      }
      node = next
    }
    node.end = true
  }
  return root
}

function child (node: PathNode, key: string): PathNode {
  let next = node.keys.get(key)
  if (next === undefined) {
    next = newNode()
    node.keys.set(key, next)
  }
  return next
}

// index of the closing quote of the JSON string starting at `open`, or -1
function quotedEnd (s: string, open: number): number {
  for (let i = open + 1; i < s.length; i++) {
    if (s[i] === '\\') i++
    else if (s[i] === '"') return i
  }
  return -1
}

function badPath (path: string, why: string): Error {
  return new DUALTRACK_ERR_CONFIG_INVALID(`bad JSON path ${JSON.stringify(path)}: ${why} (example: $.items[*].id)`)
}

const NO_NODES: readonly PathNode[] = []

/** the trie nodes reached from `nodes` by one step through object key `key` (or an array element) */
export function stepPaths (nodes: readonly PathNode[], key: string | null): readonly PathNode[] {
  // the common case is no configured path at all: no allocation
  if (nodes.length === 0) return NO_NODES
  const out: PathNode[] = []
  for (const n of nodes) {
    if (key !== null) {
      const c = n.keys.get(key)
      if (c !== undefined) out.push(c)
    }
    if (n.any !== undefined) out.push(n.any)
  }
  return out
}

export function endsHere (nodes: readonly PathNode[]): boolean {
  for (const n of nodes) if (n.end) return true
  return false
}

/** the templated path segment for an object key: ids become `[*]` so metric labels stay bounded */
export function keySegment (key: string): string {
  if (key.length > MAX_KEY_LENGTH || DIGITS.test(key) || UUID.test(key)) return '[*]'
  return IDENT.test(key) ? '.' + key : '[' + JSON.stringify(key) + ']'
}

interface Walk {
  // undefined while probing for any difference (unordered array partners)
  fields: Set<string> | undefined
  // raw keys, null for an array element: templated only when a difference is reported
  stack: (string | null)[]
  max: number
  more: boolean
  tolerance: number
  unordered: boolean
}

/** compile the options once; `compare` is then called per shadowed request */
export function compileComparer (opts: CompareOptions): Comparer {
  const ignore = compilePaths(opts.ignore)
  const rootNodes: readonly PathNode[] = opts.ignore.length === 0 ? NO_NODES : [ignore]
  const headers = [...new Set(opts.headers.map((h) => h.toLowerCase()))]
  const max = opts.maxFields ?? DEFAULT_MAX_FIELDS
  const tolerance = opts.numericTolerance
  const unordered = opts.unorderedArrays

  return {
    compare (primary, shadow) {
      const fields = new Set<string>()
      const w: Walk = { fields, stack: [], max, more: false, tolerance, unordered }
      if (primary.status !== shadow.status) fields.add('status')
      if (headers.length > 0) compareHeaders(headers, primary.headers, shadow.headers, fields)

      // byte-identical bodies parse to the same value: nothing to walk (the usual case once a
      // migration is right, and then a comparison is one memcmp instead of two JSON.parse)
      if (!primary.body.equals(shadow.body)) {
        const a = parseJson(primary.body)
        const b = a === NOT_JSON ? NOT_JSON : parseJson(shadow.body)
        if (a === NOT_JSON || b === NOT_JSON) report(w)
        else if (!endsHere(rootNodes)) walk(a, b, rootNodes, w)
      }

      const out = [...fields].sort()
      if (w.more) out.push(MORE_FIELD)
      return { equal: out.length === 0, fields: out }
    }
  }
}

function compareHeaders (
  names: readonly string[],
  a: Answer['headers'],
  b: Answer['headers'],
  fields: Set<string>
): void {
  const av = pickHeaders(names, a)
  const bv = pickHeaders(names, b)
  for (const name of names) {
    const x = av.get(name)
    const y = bv.get(name)
    if (x === undefined && y === undefined) continue
    if (x === undefined || y === undefined || x.length !== y.length || x.some((v, i) => v !== y[i])) {
      fields.add('header:' + name)
    }
  }
}

// case-insensitive lookup; a single value and a one-element list are the same header
function pickHeaders (names: readonly string[], headers: Answer['headers']): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    const name = k.toLowerCase()
    if (!names.includes(name)) continue
    const list = out.get(name) ?? []
    if (Array.isArray(v)) list.push(...v)
    else list.push(v)
    out.set(name, list)
  }
  return out
}

const NOT_JSON = Symbol('not json')

function parseJson (body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown
  } catch {
    return NOT_JSON
  }
}

// record the current path; true stops the walk (a probe found a difference, or the cap is reached)
function report (w: Walk): boolean {
  if (w.fields === undefined) return true
  let path = '$'
  for (const k of w.stack) path += k === null ? '[*]' : keySegment(k)
  if (w.fields.has(path)) return false
  if (w.fields.size >= w.max) {
    w.more = true
    return true
  }
  w.fields.add(path)
  return false
}

function kind (v: unknown): string {
  if (v === null) return 'null'
  return Array.isArray(v) ? 'array' : typeof v
}

function numbersMatch (a: number, b: number, tolerance: number): boolean {
  if (a === b) return true
  // relative tolerance with a floor of 1: near zero it acts as an absolute tolerance, so 0 vs 1e-9
  // is not a 100% difference
  return Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a), Math.abs(b))
}

// compare two parsed JSON values below the current path; true stops the walk
function walk (a: unknown, b: unknown, nodes: readonly PathNode[], w: Walk): boolean {
  const ka = kind(a)
  if (ka !== kind(b)) return report(w)
  if (ka === 'number') return numbersMatch(a as number, b as number, w.tolerance) ? false : report(w)
  if (ka === 'array') {
    return w.unordered
      ? walkUnordered(a as unknown[], b as unknown[], nodes, w)
      : walkArray(a as unknown[], b as unknown[], nodes, w)
  }
  if (ka === 'object') return walkObject(a as Record<string, unknown>, b as Record<string, unknown>, nodes, w)
  return a === b ? false : report(w)
}

// descend into one child; missing on either side is a difference at the child's path
function walkChild (key: string | null, a: unknown, b: unknown, hasA: boolean, hasB: boolean, nodes: readonly PathNode[], w: Walk): boolean {
  const next = stepPaths(nodes, key)
  if (endsHere(next)) return false
  w.stack.push(key)
  const stop = hasA && hasB ? walk(a, b, next, w) : report(w)
  w.stack.pop()
  return stop
}

function walkObject (a: Record<string, unknown>, b: Record<string, unknown>, nodes: readonly PathNode[], w: Walk): boolean {
  for (const k of Object.keys(a)) {
    if (walkChild(k, a[k], b[k], true, Object.hasOwn(b, k), nodes, w)) return true
  }
  for (const k of Object.keys(b)) {
    if (!Object.hasOwn(a, k) && walkChild(k, undefined, b[k], false, true, nodes, w)) return true
  }
  return false
}

function walkArray (a: unknown[], b: unknown[], nodes: readonly PathNode[], w: Walk): boolean {
  const n = Math.max(a.length, b.length)
  for (let i = 0; i < n; i++) {
    if (walkChild(null, a[i], b[i], i < a.length, i < b.length, nodes, w)) return true
  }
  return false
}

// multiset comparison: every element needs an equal partner (same ignores and tolerance) on the
// other side; pairs in the same position are tried first, so same-order arrays stay linear. greedy
// pairing: with a tolerance, equality is not transitive, so a perfect matching may be missed
function walkUnordered (a: unknown[], b: unknown[], nodes: readonly PathNode[], w: Walk): boolean {
  const next = stepPaths(nodes, null)
  if (endsHere(next)) return false
  const probe: Walk = { ...w, fields: undefined, stack: [] }
  const equal = (x: unknown, y: unknown): boolean => !walk(x, y, next, probe)
  const usedB = new Uint8Array(b.length)
  const leftA: unknown[] = []
  for (let i = 0; i < a.length; i++) {
    if (i < b.length && equal(a[i], b[i])) usedB[i] = 1
    else leftA.push(a[i])
  }
  let unmatched = false
  for (const x of leftA) {
    let found = false
    for (let j = 0; j < b.length; j++) {
      if (usedB[j] === 0 && equal(x, b[j])) {
        usedB[j] = 1
        found = true
        break
      }
    }
    if (!found) unmatched = true
  }
  if (!unmatched && usedB.includes(0)) unmatched = true
  if (!unmatched) return false
  w.stack.push(null)
  const stop = report(w)
  w.stack.pop()
  return stop
}
