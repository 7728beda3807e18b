// load, expand and validate the YAML config; the result is frozen and typed
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { describeSchemaError } from './ajv-errors.js'
import { LineCounter, parseDocument, isMap, isPair, isScalar, isSeq, visit, type Document, type Node } from 'yaml'
import { ConfigSchema, type RawConfig, type RawRollout } from './schema.js'
import { TWO_DECIMALS_KEYWORD } from './percent.js'
import { parseDuration } from './duration.js'
import { readTokenFile, tokenWeakness } from './tokens.js'
import { checkIdPatterns, type IdPatternsConfig } from './id-patterns.js'
import { conditionProblems, exampleCondition } from './segment-values.js'
import { DUALTRACK_ERR_CONFIG_ENV, DUALTRACK_ERR_CONFIG_INVALID, DUALTRACK_ERR_CONFIG_NOT_FOUND, DUALTRACK_ERR_CONFIG_SYNTAX } from '../errors.js'

export const DEFAULT_CONFIG_PATH = 'config/gateway.yaml'
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

export interface AffinityConfig {
  readonly learn: readonly string[]
  readonly lookup: readonly string[]
  readonly ttlMs: number
  readonly maxEntries: number
  readonly maxBodyBytes: number
  readonly idPatterns?: IdPatternsConfig | undefined
}
export interface GuardConfig {
  readonly windowMs: number
  readonly minRequests: number
  readonly maxErrorRate?: number | undefined
  readonly maxErrorRateDelta?: number | undefined
  readonly maxP99Ms?: number | undefined
  readonly maxP99Ratio?: number | undefined
  readonly rollbackMode: 'drain' | 'hard'
  /** 1 - confidence: the chance of a false breach over a hold */
  readonly confidence: number
  /** fleet: judged on every replica's counts (through the store); replica: on this one's */
  readonly scope: 'fleet' | 'replica'
}
export interface PlanConfig { readonly steps: readonly number[], readonly holdMs: number }
export type RolloutConfig = Readonly<Omit<RawRollout, 'affinity' | 'guard' | 'plan' | 'salt'>> & {
  readonly salt: string
  readonly affinity?: AffinityConfig | undefined
  readonly guard?: GuardConfig | undefined
  readonly plan?: PlanConfig | undefined
}
/** an admin token as loaded: a tokenFile has been read into token */
export interface AdminToken {
  readonly name: string
  readonly role: 'operator' | 'viewer'
  readonly token: string
  /** absolute path, when the token came from a file (re-read when it changes) */
  readonly tokenFile?: string | undefined
}
export type Config = Readonly<Omit<RawConfig, 'rollouts' | 'admin'>> & {
  readonly admin: Readonly<Omit<RawConfig['admin'], 'tokens'>> & { readonly tokens: readonly AdminToken[] }
  readonly rollouts: Readonly<Record<string, RolloutConfig>>
  /** the file it came from, for messages and reloads */
  readonly file: string
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, multipleOfPrecision: 9, allowUnionTypes: true })
ajv.addKeyword(TWO_DECIMALS_KEYWORD)
const validate = ajv.compile<RawConfig>(ConfigSchema)

/** pick the config file: --config beats DUALTRACK_CONFIG beats config/gateway.yaml */
export function resolveConfigPath (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.DUALTRACK_CONFIG ?? DEFAULT_CONFIG_PATH)
}

export function loadConfigFile (file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new DUALTRACK_ERR_CONFIG_NOT_FOUND(file, (err as NodeJS.ErrnoException).code ?? String(err), { cause: err })
  }
  return parseConfig(text, file, env)
}

/** parse YAML text into a validated, frozen Config; throws an error naming file, line and field */
export function parseConfig (text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true })
  if (doc.errors.length > 0) {
    const msgs = doc.errors.map((e) => {
      const pos = e.linePos?.[0]
      return `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: YAML syntax error: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`
    })
    throw new DUALTRACK_ERR_CONFIG_SYNTAX(msgs.join('\n'))
  }
  expandEnv(doc, file, lines, env)
  const data = (doc.toJS() ?? {}) as Record<string, unknown>
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new DUALTRACK_ERR_CONFIG_INVALID(`${file}:1: the config must be a YAML mapping\n  example: backends: { legacy: { url: "http://127.0.0.1:4001" }, new: { url: "http://127.0.0.1:4002" } }`)
  }
  if (!validate(data)) {
    throw new DUALTRACK_ERR_CONFIG_INVALID(formatErrors(validate.errors ?? [], doc, lines, file))
  }
  const problems = crossCheck(data, doc, lines, file)
  if (problems.length > 0) throw new DUALTRACK_ERR_CONFIG_INVALID(problems.join('\n'))
  return deepFreeze(normalize(data, file))
}

// ${VAR} and ${VAR:-default}, expanded in scalar values (not in the text, so lines stay true and
// a value cannot inject YAML); a plain scalar that was all one ${...} is re-read as a YAML scalar,
// so `port: ${PORT:-8080}` is a number
const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g
function expandEnv (doc: Document, file: string, lines: LineCounter, env: NodeJS.ProcessEnv): void {
  const missing: string[] = []
  visit(doc, {
    Scalar (key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return
      const original = node.value
      const expanded = original.replace(VAR, (_m, name: string, def: string | undefined) => {
        const v = env[name]
        if (v !== undefined && v !== '') return v
        if (def !== undefined) return def
        const at = node.range ? lines.linePos(node.range[0]) : undefined
        missing.push(`${file}${at ? `:${at.line}:${at.col}` : ''}: ${pathOf(path, node)}: environment variable ${name} is not set and has no default\n  example: \${${name}:-value} gives a default`)
        return ''
      })
      const whole = /^\$\{[^}]+\}$/.test(original)
      if (whole && node.type === 'PLAIN') {
        const reread = parseDocument(expanded).toJS() as unknown
        node.value = typeof reread === 'number' || typeof reread === 'boolean' ? reread : expanded
      } else {
        node.value = expanded
      }
    }
  })
  if (missing.length > 0) throw new DUALTRACK_ERR_CONFIG_ENV(missing.join('\n'))
}

function pathOf (ancestors: readonly unknown[], leaf: unknown): string {
  const parts: string[] = []
  const chain = [...ancestors, leaf]
  for (let i = 0; i < chain.length - 1; i++) {
    const a = chain[i]
    const next = chain[i + 1]
    if (isPair(a) && isScalar(a.key)) parts.push(String(a.key.value))
    else if (isSeq(a)) parts.push(`[${a.items.indexOf(next as never)}]`)
  }
  return parts.join('.').replace(/\.\[/g, '[') || '(root)'
}

function lineOf (doc: Document, lines: LineCounter, path: (string | number)[], keyNode = false): string {
  let node: unknown = doc.contents
  let keyAt: Node | undefined
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) break
      keyAt = pair.key as Node
      node = pair.value
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg]
      keyAt = undefined
    } else break
  }
  const target = (keyNode && keyAt) ? keyAt : (node as Node | undefined)
  const offset = target?.range?.[0]
  if (offset === undefined) return ''
  const { line, col } = lines.linePos(offset)
  return `:${line}:${col}`
}

function exampleOf (err: ErrorObject): string {
  const schema = err.parentSchema as { examples?: unknown[] } | undefined
  const ex = schema?.examples?.[0]
  return typeof ex === 'string' ? `\n  example: ${ex}` : ''
}

function formatErrors (errors: ErrorObject[], doc: Document, lines: LineCounter, file: string): string {
  // anyOf (durations) reports each branch: keep the summary line only
  const seen = new Set<string>()
  const out: string[] = []
  const unionPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath))
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && unionPaths.has(e.instancePath)) continue
    const p = describeSchemaError(e)
    const key = `${p.field}|${p.message}`
    if (seen.has(key)) continue
    seen.add(key)
    // a missing key has no line of its own: point at its parent
    const at = e.keyword === 'required' ? p.path.slice(0, -1) : p.path
    const missing = e.keyword === 'required' ? (e.parentSchema as { properties?: Record<string, { examples?: string[] }> }).properties?.[p.path[p.path.length - 1] as string]?.examples?.[0] : undefined
    out.push(`${file}${lineOf(doc, lines, [...at], p.onKey)}: ${p.field}: ${p.message}${missing ? `\n  example: ${missing}` : exampleOf(e)}`)
  }
  return out.join('\n')
}

// what one JSON schema cannot say
function crossCheck (cfg: RawConfig, doc: Document, lines: LineCounter, file: string): string[] {
  const out: string[] = []
  const names = new Set<string>()
  cfg.routes.forEach((r, i) => {
    if (!(r.rollout in cfg.rollouts)) {
      out.push(`${file}${lineOf(doc, lines, ['routes', i, 'rollout'])}: routes[${i}].rollout: no rollout named ${r.rollout} (rollouts: ${Object.keys(cfg.rollouts).join(', ') || 'none'})\n  example: rollout: ${Object.keys(cfg.rollouts)[0] ?? 'checkout'}`)
    }
    if (names.has(r.name)) out.push(`${file}${lineOf(doc, lines, ['routes', i, 'name'])}: routes[${i}].name: ${r.name} is used by another route\n  example: name: ${r.name}-2`)
    names.add(r.name)
  })
  cfg.admin.tokens.forEach((tk, i) => {
    const at = `${file}${lineOf(doc, lines, ['admin', 'tokens', i])}: admin.tokens[${i}]`
    if ((tk.token === undefined) === (tk.tokenFile === undefined)) {
      out.push(`${at}: set exactly one of token and tokenFile\n  example: - { name: oncall, tokenFile: /etc/dualtrack/tokens/operator, role: operator }`)
      return
    }
    if (tk.tokenFile !== undefined) {
      // a relative path is relative to the config file, like a Kubernetes volume next to it
      const path = resolve(dirname(file), tk.tokenFile)
      try {
        tk.token = readTokenFile(path)
        tk.tokenFile = path
      } catch (err) {
        out.push(`${at}.tokenFile: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})\n  example: tokenFile: /etc/dualtrack/tokens/operator`)
        return
      }
    }
    const weak = tokenWeakness(tk.token as string)
    if (weak !== undefined) out.push(`${at}.${tk.tokenFile !== undefined ? 'tokenFile' : 'token'}: the token of ${tk.name} ${weak}`)
  })
  const peers = cfg.state.peers
  if (peers !== undefined && (peers.urls === undefined) === (peers.dns === undefined)) {
    out.push(`${file}${lineOf(doc, lines, ['state', 'peers'])}: state.peers: give either urls or dns (one of them)\n  example: peers: { dns: "dualtrack-peers.payments.svc.cluster.local:9090", timeoutMs: 500 }`)
  }
  if (peers?.token !== undefined && peers.tokenFile !== undefined) {
    out.push(`${file}${lineOf(doc, lines, ['state', 'peers', 'tokenFile'], true)}: state.peers.tokenFile: give token or tokenFile, not both\n  example: peers: { dns: "dualtrack-peers:9090", tokenFile: /etc/dualtrack-tokens/viewer }`)
  } else if (peers?.tokenFile !== undefined) {
    // like admin.tokens[].tokenFile: relative to the config file, read now so a missing Secret is refused at load
    const path = resolve(dirname(file), peers.tokenFile)
    try {
      const token = readTokenFile(path)
      const weak = tokenWeakness(token)
      if (weak !== undefined) out.push(`${file}${lineOf(doc, lines, ['state', 'peers', 'tokenFile'], true)}: state.peers.tokenFile: the peer token ${weak}`)
      peers.token = token
      peers.tokenFile = path
    } catch (err) {
      out.push(`${file}${lineOf(doc, lines, ['state', 'peers', 'tokenFile'], true)}: state.peers.tokenFile: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})\n  example: tokenFile: /etc/dualtrack-tokens/viewer`)
    }
  }
  // the Redis store reaches exactly one kind of Redis (DESIGN.md §11)
  const rd = cfg.state.redis
  const kinds = (['url', 'sentinels', 'cluster'] as const).filter((k) => rd[k] !== undefined)
  const at = (k: string) => `${file}${lineOf(doc, lines, ['state', 'redis', k], true)}: state.redis.${k}`
  if (kinds.length > 1) out.push(`${file}${lineOf(doc, lines, ['state', 'redis'])}: state.redis: give exactly one of url, sentinels, cluster (found ${kinds.join(' and ')})\n  example: redis: { sentinels: ["redis-sentinel:26379"], sentinelName: dualtrack }`)
  if (rd.sentinels !== undefined && rd.sentinelName === undefined) out.push(`${at('sentinels')}: needs sentinelName, the master's name in the sentinels' config\n  example: sentinelName: dualtrack`)
  if (rd.sentinelName !== undefined && rd.sentinels === undefined) out.push(`${at('sentinelName')}: only with sentinels\n  example: sentinels: ["redis-sentinel:26379"]`)
  if (rd.replicaWaitMs !== undefined && rd.sentinels === undefined) out.push(`${at('replicaWaitMs')}: only with sentinels (a replica to wait for)\n  example: replicaWaitMs: 100`)
  if (rd.sentinelPassword !== undefined && rd.sentinels === undefined) out.push(`${at('sentinelPassword')}: only with sentinels\n  example: sentinels: ["redis-sentinel:26379"]`)
  for (const [name, r] of Object.entries(cfg.rollouts)) {
    const both = r.force.new.filter((k) => r.force.legacy.includes(k))
    if (both.length > 0) out.push(`${file}${lineOf(doc, lines, ['rollouts', name, 'force'])}: rollouts.${name}.force: ${both.join(', ')} is forced to both new and legacy\n  example: force: { new: [qa-user-1], legacy: [vip-42] }`)
    if (r.plan && !r.guard) out.push(`${file}${lineOf(doc, lines, ['rollouts', name, 'plan'])}: rollouts.${name}.plan: a plan needs a guard to judge each step\n  example: guard: { window: 60s, minRequests: 200, maxErrorRate: 0.02 }`)
    const ids = r.affinity?.idPatterns
    if (ids !== undefined) {
      for (const p of checkIdPatterns(ids)) {
        const at = ['rollouts', name, 'affinity', 'idPatterns', ...(p.field ? [p.field] : [])]
        out.push(`${file}${lineOf(doc, lines, at)}: ${at.join('.')}: ${p.message}${p.message.includes('example:') ? '' : '\n  example: idPatterns: { new: "^NW-", legacy: "^LG-" }'}`)
      }
    }
    out.push(...segmentProblems(name, r, doc, lines, file))
    if (r.plan) {
      const s = r.plan.steps
      if (s.some((v, i) => i > 0 && v <= (s[i - 1] as number))) out.push(`${file}${lineOf(doc, lines, ['rollouts', name, 'plan', 'steps'])}: rollouts.${name}.plan.steps: must rise step by step\n  example: steps: [5, 10, 25, 50, 100]`)
    }
  }
  return out
}

// segments: each names declared attributes, values that parse, one outcome, a unique name
function segmentProblems (name: string, r: RawRollout, doc: Document, lines: LineCounter, file: string): string[] {
  const out: string[] = []
  const attributes = Object.keys(r.attributes ?? {})
  const seen = new Set<string>()
  ;(r.segments ?? []).forEach((s, i) => {
    const at = ['rollouts', name, 'segments', i]
    const field = `rollouts.${name}.segments[${i}]`
    if ((s.percent === undefined) === (s.backend === undefined)) {
      out.push(`${file}${lineOf(doc, lines, at)}: ${field}: needs exactly one of percent or backend\n  example: percent: 10   (or backend: new)`)
    }
    if (seen.has(s.name)) out.push(`${file}${lineOf(doc, lines, [...at, 'name'])}: ${field}.name: ${s.name} is used by another segment\n  example: name: ${s.name}-2`)
    seen.add(s.name)
    s.when.forEach((c, j) => {
      for (const p of conditionProblems(c, attributes)) {
        const key = p.field.replace(/\[\d+\]$/, '')
        const idx = /\[(\d+)\]$/.exec(p.field)?.[1]
        const path = [...at, 'when', j, key, ...(idx === undefined ? [] : [Number(idx)])]
        out.push(`${file}${lineOf(doc, lines, path)}: ${field}.when[${j}].${p.field}: ${p.message}\n  example: ${exampleCondition(c.op)}`)
      }
    })
  })
  return out
}

function normalize (raw: RawConfig, file: string): Config {
  const rollouts: Record<string, RolloutConfig> = {}
  for (const [name, r] of Object.entries(raw.rollouts)) {
    const { affinity, guard, plan, salt, ...rest } = r
    rollouts[name] = {
      ...rest,
      salt: salt ?? name,
      affinity: affinity && { learn: affinity.learn, lookup: affinity.lookup, ttlMs: parseDuration(affinity.ttl), maxEntries: affinity.maxEntries, maxBodyBytes: affinity.maxBodyBytes, idPatterns: affinity.idPatterns },
      guard: guard && { ...guard, windowMs: parseDuration(guard.window), scope: guard.scope ?? (raw.state.store === 'redis' ? 'fleet' : 'replica') },
      plan: plan && { steps: plan.steps, holdMs: parseDuration(plan.hold) }
    }
  }
  // crossCheck read every tokenFile into token
  // one server on the default port when no Redis is named
  const rd = raw.state.redis
  const state = rd.url === undefined && rd.sentinels === undefined && rd.cluster === undefined
    ? { ...raw.state, redis: { ...rd, url: DEFAULT_REDIS_URL } }
    : raw.state
  return { ...raw, admin: raw.admin as Config['admin'], state, rollouts, file }
}

function deepFreeze<T> (o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}
