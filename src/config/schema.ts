// the gateway's configuration as a JSON schema (TypeBox builds it, Ajv checks it);
// `examples` on a node is what a config error shows as a valid example
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { OPERATORS, type Operator } from './segment-values.js'

const Backend = () => Type.Unsafe<'legacy' | 'new'>({ type: 'string', enum: ['legacy', 'new'], default: 'legacy', examples: ['default: legacy'] })

// percent: 0..100 with at most two decimals (0.01% resolution, DESIGN.md §1)
export const PercentSchema = Type.Number({ minimum: 0, maximum: 100, multipleOf: 0.01, twoDecimals: true, examples: ['percent: 5'] })

// a duration: milliseconds as a number, or "500ms", "60s", "10m", "2h", "30d"
const Duration = (example: string) => Type.Union([
  Type.Integer({ minimum: 0 }),
  Type.String({ pattern: '^[0-9]+(ms|s|m|h|d)$' })
], { examples: [example] })

// where a cohort key, a region or an order id is read from
const KEY_SOURCE = '^(header|cookie|query|jwt):[A-Za-z0-9_.!#$%&\'*+^`|~-]+$'
const KeySource = Type.String({ pattern: KEY_SOURCE, examples: ['header:x-user-id'] })
// json:$.a[0].b (keys and array indexes); xml:NAME (an element's local name, ASCII)
const JSON_PATH = 'json:\\$(\\.[A-Za-z0-9_-]+|\\[(0|[1-9][0-9]{0,5})\\])+'
const XML_NAME = 'xml:[A-Za-z_][A-Za-z0-9_.-]*'
const AFFINITY_LEARN = `^(${JSON_PATH}|${XML_NAME}|header:[A-Za-z0-9_-]+)$`
const AFFINITY_LOOKUP = `^(${JSON_PATH}|${XML_NAME}|header:[A-Za-z0-9_-]+|form:[A-Za-z0-9_.-]+|query:[A-Za-z0-9_.-]+|path:/.*:[A-Za-z][A-Za-z0-9_]*.*)$`
// where a segment attribute is read from: a key source, or the client's address
const ATTRIBUTE_SOURCE = '^((header|cookie|query|jwt):[A-Za-z0-9_.!#$%&\'*+^`|~-]+|client-ip)$'
const NAME = '^[A-Za-z0-9_.-]+$'

// host:port of a sentinel or cluster node
const HOST_PORT = '^[^\\s:/]+:[0-9]{1,5}$'

const obj = <T extends Record<string, TSchema>>(props: T, example: string, extra: Record<string, unknown> = {}) =>
  Type.Object(props, { additionalProperties: false, examples: [example], ...extra })

export const BackendSchema = obj({
  url: Type.String({ pattern: '^https?://[^\\s/]+(/.*)?$', examples: ['url: "http://127.0.0.1:4001"'] }),
  /** overall deadline for one upstream request (headers and body) */
  timeoutMs: Type.Integer({ minimum: 1, default: 10_000, examples: ['timeoutMs: 10000'] }),
  connectTimeoutMs: Type.Integer({ minimum: 1, default: 2_000, examples: ['connectTimeoutMs: 2000'] }),
  /** idle keep-alive to the backend: keep it shorter than the backend's own idle timeout */
  keepAliveTimeoutMs: Type.Integer({ minimum: 1, default: 4_000, examples: ['keepAliveTimeoutMs: 4000'] }),
  connections: Type.Integer({ minimum: 1, default: 128, examples: ['connections: 128'] })
}, 'legacy: { url: "http://127.0.0.1:4001", timeoutMs: 10000 }')

/**
 * shadow copies one route may have in flight, and the largest body a copy carries: 64 copies ×
 * 3 bodies (request, primary answer, copy's answer) × 128 KiB = 24 MiB, what the 384Mi Kubernetes
 * limit leaves room for (README: Sizing)
 */
export const DEFAULT_SHADOW_MAX_IN_FLIGHT = 64
export const DEFAULT_SHADOW_MAX_BODY_BYTES = 131_072

const ShadowSchema = obj({
  percent: Type.Number({ minimum: 0, maximum: 100, multipleOf: 0.01, twoDecimals: true, default: 100, examples: ['percent: 100'] }),
  methods: Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { default: ['GET'], examples: ['methods: [GET]'] }),
  writes: Type.Unsafe<'off' | 'dry-run'>({ type: 'string', enum: ['off', 'dry-run'], default: 'off', examples: ['writes: off'] }),
  timeoutMs: Type.Integer({ minimum: 1, default: 2_000, examples: ['timeoutMs: 2000'] }),
  maxInFlight: Type.Integer({ minimum: 1, default: DEFAULT_SHADOW_MAX_IN_FLIGHT, examples: ['maxInFlight: 64'] }),
  maxBodyBytes: Type.Integer({ minimum: 0, default: DEFAULT_SHADOW_MAX_BODY_BYTES, examples: ['maxBodyBytes: 131072'] }),
  sameBackendPercent: Type.Number({ minimum: 0, maximum: 100, default: 0, examples: ['sameBackendPercent: 5'] }),
  compare: obj({
    ignore: Type.Array(Type.String({ pattern: '^\\$' }), { default: [] }),
    headers: Type.Array(Type.String(), { default: [] }),
    numericTolerance: Type.Number({ minimum: 0, default: 0 }),
    unorderedArrays: Type.Boolean({ default: false })
  }, 'compare: { ignore: [$.createdAt], headers: [content-type], numericTolerance: 0.001 }', { default: {} }),
  redact: Type.Array(Type.String({ pattern: '^\\$' }), { default: [], examples: ['redact: [$.buyer.address]'] })
}, 'shadow: { percent: 100, methods: [GET], writes: off }')

// a condition value: YAML strings or numbers (dates as epoch seconds may be numbers)
const ConditionValue = () => Type.Unsafe<string | number>({ type: ['string', 'number'] })

export const ConditionSchema = Type.Object({
  attribute: Type.String({ minLength: 1, examples: ['attribute: registeredAt'] }),
  op: Type.Unsafe<Operator>({ type: 'string', enum: [...OPERATORS], examples: ['op: DATE_AFTER'] }),
  value: Type.Optional(ConditionValue()),
  values: Type.Optional(Type.Array(ConditionValue(), { minItems: 1, examples: ['values: [staff, qa]'] })),
  inverted: Type.Boolean({ default: false, examples: ['inverted: true'] }),
  caseInsensitive: Type.Boolean({ default: false, examples: ['caseInsensitive: true'] })
}, { additionalProperties: false, required: ['attribute', 'op'], examples: ['- { attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01T00:00:00Z" }'] })

export const SegmentSchema = obj({
  name: Type.String({ pattern: NAME, examples: ['name: new-signups'] }),
  when: Type.Array(ConditionSchema, { minItems: 1, examples: ['when: [{ attribute: tier, op: IN, values: [staff] }]'] }),
  /** bucket against this on the rollout's cohort bucket */
  percent: Type.Optional(PercentSchema),
  /** a fixed system */
  backend: Type.Optional(Type.Unsafe<'legacy' | 'new'>({ type: 'string', enum: ['legacy', 'new'], examples: ['backend: new'] }))
}, '- { name: new-signups, when: [{ attribute: registeredAt, op: DATE_AFTER, value: "2026-11-01" }], percent: 10 }', { required: ['name', 'when'] })

export const RolloutSchema = obj({
  percent: PercentSchema,
  /** reshuffles the cohort when changed; defaults to the rollout's name */
  salt: Type.Optional(Type.String({ minLength: 1, examples: ['salt: checkout-2026'] })),
  cohortKey: Type.Array(KeySource, { minItems: 1, examples: ['cohortKey: [header:x-user-id, cookie:uid, jwt:sub]'] }),
  unkeyed: Type.Unsafe<'legacy' | 'new'>({ type: 'string', enum: ['legacy', 'new'], default: 'legacy', examples: ['unkeyed: legacy'] }),
  regions: Type.Optional(obj({
    key: KeySource,
    percent: Type.Record(Type.String({ minLength: 1 }), PercentSchema, { default: {}, examples: ['percent: { guangdong: 100, zhejiang: 20 }'] })
  }, 'regions: { key: header:x-region, percent: { guangdong: 100 } }')),
  force: obj({
    new: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
    legacy: Type.Array(Type.String({ minLength: 1 }), { default: [] })
  }, 'force: { new: [qa-user-1], legacy: [vip-42] }', { default: {} }),
  affinity: Type.Optional(obj({
    learn: Type.Array(Type.String({ pattern: AFFINITY_LEARN }), { default: [], examples: ['learn: [json:$.orderId, json:$.data[0].id, xml:orderId, header:location]'] }),
    lookup: Type.Array(Type.String({ pattern: AFFINITY_LOOKUP }), { default: [], examples: ['lookup: [path:/api/orders/:orderId, form:out_trade_no, xml:out_trade_no, json:$.resource.purchase_units[0].reference_id]'] }),
    ttl: Duration('ttl: 30d'),
    maxEntries: Type.Integer({ minimum: 1, default: 1_000_000, examples: ['maxEntries: 1000000'] }),
    maxBodyBytes: Type.Integer({ minimum: 1, default: 65_536, examples: ['maxBodyBytes: 65536'] }),
    /** where the two systems' ids differ in form: the owner from the id alone, no store call */
    idPatterns: Type.Optional(obj({
      new: Type.Optional(Type.String({ minLength: 1, examples: ['new: "^NW-"'] })),
      legacy: Type.Optional(Type.String({ minLength: 1, examples: ['legacy: "^LG-"'] }))
    }, 'idPatterns: { new: "^NW-", legacy: "^LG-" }', { minProperties: 1 }))
  }, 'affinity: { learn: [json:$.orderId], lookup: [form:out_trade_no], ttl: 30d }')),
  guard: Type.Optional(obj({
    window: Duration('window: 60s'),
    minRequests: Type.Integer({ minimum: 1, default: 200 }),
    maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxErrorRateDelta: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxP99Ms: Type.Optional(Type.Number({ minimum: 0 })),
    maxP99Ratio: Type.Optional(Type.Number({ minimum: 1 })),
    /** drain: orders new owns keep reaching it; hard: everything to legacy (only where data is shared) */
    rollbackMode: Type.Unsafe<'drain' | 'hard'>({ type: 'string', enum: ['drain', 'hard'], default: 'drain', examples: ['rollbackMode: drain'] }),
    /** a breach must be shown at this confidence: 1 - confidence bounds the false breaches of a hold */
    confidence: Type.Number({ exclusiveMinimum: 0.5, exclusiveMaximum: 1, default: 0.99, examples: ['confidence: 0.99'] }),
    /** fleet (default with store: redis): every replica's traffic, through the store; replica: its own */
    scope: Type.Optional(Type.Unsafe<'fleet' | 'replica'>({ type: 'string', enum: ['fleet', 'replica'], examples: ['scope: fleet'] }))
  }, 'guard: { window: 60s, minRequests: 200, maxErrorRateDelta: 0.01, maxP99Ratio: 1.5 }')),
  /** named request attributes for segments: the first present source wins */
  attributes: Type.Optional(Type.Record(Type.String({ pattern: NAME }), Type.Array(Type.String({ pattern: ATTRIBUTE_SOURCE, examples: ['[jwt:reg_at, header:x-user-registered-at]'] }), { minItems: 1 }),
    { examples: ['attributes: { registeredAt: [jwt:reg_at, header:x-user-registered-at], clientIp: [client-ip] }'] })),
  /** user groups checked in order after force: the first whose conditions all hold decides */
  segments: Type.Optional(Type.Array(SegmentSchema, { examples: ['segments: [{ name: staff, when: [{ attribute: tier, op: IN, values: [staff] }], backend: new }]'] })),
  plan: Type.Optional(obj({
    steps: Type.Array(PercentSchema, { minItems: 1, examples: ['steps: [5, 10, 25, 50, 100]'] }),
    hold: Duration('hold: 10m')
  }, 'plan: { steps: [5, 10, 25, 50, 100], hold: 10m }'))
}, 'checkout: { percent: 5, salt: checkout-2026, cohortKey: [header:x-user-id] }')

export const RouteSchema = obj({
  name: Type.String({ pattern: '^[A-Za-z0-9_.-]+$', examples: ['name: orders'] }),
  match: obj({
    prefix: Type.String({ pattern: '^/', examples: ['prefix: /api/orders'] }),
    methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$' }), { minItems: 1, examples: ['methods: [GET, POST]'] }))
  }, 'match: { prefix: /api/orders, methods: [GET, POST] }'),
  rollout: Type.String({ minLength: 1, examples: ['rollout: checkout'] }),
  shadow: Type.Optional(ShadowSchema)
}, '- { name: orders, match: { prefix: /api/orders }, rollout: checkout }')

const TokenSchema = obj({
  name: Type.String({ minLength: 1 }),
  /** the token itself (usually from the environment), or */
  token: Type.Optional(Type.String({ minLength: 1, examples: ['token: "${DUALTRACK_OPERATOR_TOKEN}"'] })),
  /** a file holding it (a mounted Secret): re-read when it changes, so a rotation needs no restart */
  tokenFile: Type.Optional(Type.String({ minLength: 1, examples: ['tokenFile: /etc/dualtrack/tokens/operator'] })),
  role: Type.Unsafe<'operator' | 'viewer'>({ type: 'string', enum: ['operator', 'viewer'], examples: ['role: operator'] })
}, '- { name: oncall, token: "${DUALTRACK_OPERATOR_TOKEN}", role: operator }')

export const ConfigSchema = obj({
  server: obj({
    host: Type.String({ default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8080, examples: ['port: 8080'] }),
    /** inbound body limit in bytes (413 past it) */
    bodyLimit: Type.Integer({ minimum: 1, default: 1_048_576, examples: ['bodyLimit: 1048576'] }),
    /** inbound deadline for a whole request; must not be 0 */
    requestTimeoutMs: Type.Integer({ minimum: 1, default: 60_000, examples: ['requestTimeoutMs: 60000'] }),
    /** inbound deadline for the request head (capped at requestTimeoutMs): slow-header clients are cut */
    headersTimeoutMs: Type.Integer({ minimum: 1, default: 10_000, examples: ['headersTimeoutMs: 10000'] }),
    keepAliveTimeoutMs: Type.Integer({ minimum: 1, default: 72_000, examples: ['keepAliveTimeoutMs: 72000'] }),
    /** open client connections at most; past it a new one is closed at once (descriptors never run out) */
    maxConnections: Type.Integer({ minimum: 1, default: 10_000, examples: ['maxConnections: 10000'] }),
    /** CIDRs of proxies in front of dualtrack whose x-forwarded-for is kept */
    trustedProxies: Type.Array(Type.String(), { default: [], examples: ['trustedProxies: [10.0.0.0/8]'] }),
    /** worker processes behind one port: a number, or auto (one per core) */
    workers: Type.Union([Type.Integer({ minimum: 1, maximum: 64 }), Type.Literal('auto')], { default: 1, examples: ['workers: auto'] }),
    /** after SIGTERM: keep serving (not ready) this long before closing */
    drainDelayMs: Type.Integer({ minimum: 0, default: 0, examples: ['drainDelayMs: 5000'] })
  }, 'server: { host: 0.0.0.0, port: 8080 }', { default: {} }),
  admin: obj({
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 9090, examples: ['port: 9090'] }),
    tokens: Type.Array(TokenSchema, { default: [] }),
    metricsAuth: Type.Boolean({ default: false }),
    /** open connections to the admin listener at most */
    maxConnections: Type.Integer({ minimum: 1, default: 256, examples: ['maxConnections: 256'] })
  }, 'admin: { host: 127.0.0.1, port: 9090 }', { default: {} }),
  backends: obj({ legacy: BackendSchema, new: BackendSchema },
    'backends: { legacy: { url: "http://127.0.0.1:4001" }, new: { url: "http://127.0.0.1:4002" } }',
    { required: ['legacy', 'new'] }),
  state: obj({
    store: Type.Unsafe<'file' | 'redis'>({ type: 'string', enum: ['file', 'redis'], default: 'file', examples: ['store: file'] }),
    file: Type.String({ default: 'var/state.json' }),
    redis: obj({
      /** one server; exactly one of url, sentinels, cluster (redis://127.0.0.1:6379 when none is given) */
      url: Type.Optional(Type.String({ pattern: '^rediss?://', examples: ['url: "${REDIS_URL:-redis://127.0.0.1:6379}"'] })),
      /** Redis Sentinel: the sentinels' host:port; the master named sentinelName follows failovers */
      sentinels: Type.Optional(Type.Array(Type.String({ pattern: HOST_PORT }), { minItems: 1, examples: ['sentinels: ["redis-sentinel:26379"]'] })),
      sentinelName: Type.Optional(Type.String({ minLength: 1, examples: ['sentinelName: dualtrack'] })),
      /** Redis Cluster: some nodes' host:port (the rest are discovered) */
      cluster: Type.Optional(Type.Array(Type.String({ pattern: HOST_PORT }), { minItems: 1, examples: ['cluster: ["redis-0:6379", "redis-1:6379"]'] })),
      username: Type.Optional(Type.String({ minLength: 1, examples: ['username: dualtrack'] })),
      password: Type.Optional(Type.String({ examples: ['password: "${REDIS_PASSWORD}"'] })),
      /** the sentinels' own password, when they have one */
      sentinelPassword: Type.Optional(Type.String({ examples: ['sentinelPassword: "${REDIS_SENTINEL_PASSWORD}"'] })),
      /** TLS to Redis (and the sentinels); a rediss:// url turns it on too */
      tls: Type.Optional(obj({
        servername: Type.Optional(Type.String({ minLength: 1 })),
        /** PEM of the CA that signed the server's certificate (default: the system's) */
        ca: Type.Optional(Type.String({ minLength: 1 })),
        rejectUnauthorized: Type.Optional(Type.Boolean())
      }, 'tls: {}')),
      /** Sentinel: an owner write waits this long for one replica (WAIT 1 ms); 0: no wait */
      replicaWaitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000, examples: ['replicaWaitMs: 100'] })),
      prefix: Type.String({ default: 'dualtrack:', pattern: '^[^{}]*$', examples: ['prefix: "dualtrack:"'] })
    }, 'redis: { url: "redis://127.0.0.1:6379", prefix: "dualtrack:" }', { default: {} }),
    /** the other replicas' admin listeners, asked for an order's owner while the store is down */
    peers: Type.Optional(obj({
      urls: Type.Optional(Type.Array(Type.String({ pattern: '^https?://[^\\s/]+/?$', examples: ['urls: ["http://10.0.0.2:9090"]'] }), { minItems: 1, examples: ['urls: ["http://10.0.0.2:9090"]'] })),
      dns: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9.-]+:[0-9]{1,5}$', examples: ['dns: "dualtrack-peers.payments.svc.cluster.local:9090"'] })),
      token: Type.Optional(Type.String({ minLength: 16, examples: ['token: "${DUALTRACK_PEER_TOKEN}"'] })),
      /** or a file holding it (a mounted Secret), read again every 5 s: a rotation needs no restart */
      tokenFile: Type.Optional(Type.String({ minLength: 1, examples: ['tokenFile: /etc/dualtrack-tokens/viewer'] })),
      /** the whole ask; paid only when the store is down, the order is unknown here and a peer is slow (README: Peers) */
      timeoutMs: Type.Integer({ minimum: 1, maximum: 5_000, default: 500, examples: ['timeoutMs: 500'] })
    }, 'peers: { dns: "dualtrack-peers:9090", tokenFile: /etc/dualtrack-tokens/viewer, timeoutMs: 500 }'))
  }, 'state: { store: file, file: var/state.json }', { default: {} }),
  rollouts: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), RolloutSchema, { default: {}, examples: ['rollouts: { checkout: { percent: 5, cohortKey: [header:x-user-id] } }'] }),
  routes: Type.Array(RouteSchema, { default: [], examples: ['routes: [{ name: orders, match: { prefix: /api/orders }, rollout: checkout }]'] }),
  default: Backend()
}, 'see config/gateway.yaml', { required: ['backends'] })

export type RawConfig = Static<typeof ConfigSchema>
export type RawRollout = Static<typeof RolloutSchema>
export type RawSegment = Static<typeof SegmentSchema>
export type RawRoute = Static<typeof RouteSchema>
export type BackendName = 'legacy' | 'new'
export const BACKENDS: readonly BackendName[] = Object.freeze(['legacy', 'new'])
