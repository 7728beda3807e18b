// the run-time state shared by replicas: per-rollout percentages, regions, rollbacks, plans, with
// who changed what and when, the last YAML seen, and the audit log
import type { BackendName } from '../config/index.js'

export type Source = 'yaml' | 'admin' | 'guard' | 'plan'
export type RollbackMode = 'hard' | 'drain'

export interface Rollback {
  mode: RollbackMode
  reason: string
  by: string
  at: string
  /** false while the change has reached this replica only (Redis down) */
  propagated: boolean
}

export interface PlanState {
  /** index into the plan's steps of the step in force, -1 before the first */
  step: number
  paused: boolean
  /** running | paused | waiting (not enough data) | done | stopped (a breach) */
  state: 'running' | 'waiting' | 'done' | 'stopped'
  /** when the current step started (ISO) */
  since: string
  note: string | null
}

export interface RolloutState {
  percent: number
  regions: Record<string, number>
  /** percent segments' percentages by name (absent in docs written before segments existed) */
  segments?: Record<string, number>
  rollback: Rollback | null
  updatedBy: string
  updatedAt: string
  source: Source
  /** when each field last changed (ms since epoch): the most recent change wins across channels */
  stamps: { percent: number, rollback: number, regions: Record<string, number>, segments?: Record<string, number> }
  plan: PlanState | null
}

/** the YAML-owned fields of one rollout as last seen in a file */
export interface YamlView { percent: number, regions: Record<string, number>, segments?: Record<string, number> }

export interface AuditEntry {
  at: string
  actor: string
  source: Source
  action: string
  rollout: string | null
  before: unknown
  after: unknown
  reason: string | null
}

export interface StateDoc {
  version: number
  rollouts: Record<string, RolloutState>
  /** the YAML fields last seen, to tell a YAML edit from an unrelated reload */
  yaml: Record<string, YamlView>
}

/** who asks for a change */
export interface Actor { readonly name: string, readonly source: Source }

/** what an op was made from: its factory and arguments (JSON) */
export interface OpDesc { readonly kind: string, readonly args: readonly unknown[] }

/** a change: applied to a doc in place, returns the audit entries it made (none: no change) */
export type Op = ((doc: StateDoc, now: number) => AuditEntry[]) & { readonly desc?: OpDesc }

export const MAX_AUDIT_ENTRIES = 1000

/** an owner as the store holds it: when it was recorded (ms since epoch), null for a record older than the ledger */
export interface StoredOwner { readonly owner: BackendName, readonly at: number | null }

export interface AffinityStore {
  /** the owner of an order (and when it was recorded), or undefined; throws when the store cannot answer */
  getOwner (rollout: string, orderId: string): Promise<StoredOwner | undefined>
  /**
   * record the owner of a new order; an order that already has one keeps it. 'unreplicated': stored,
   * but no replica confirmed it within state.redis.replicaWaitMs (Sentinel). learnedAt (ms): when it
   * was learned, for a record written late (write-behind); now by default
   */
  setOwner (rollout: string, orderId: string, owner: BackendName, ttlMs: number, learnedAt?: number): Promise<void | 'unreplicated'>
  /** when the affinity connection last came back after being down (ms since epoch), for stores that can be down */
  recoveredAt? (): number
}

/** one line of the ownership ledger */
export interface OwnerRecord {
  readonly rollout: string
  readonly orderId: string
  readonly owner: BackendName
  /** when the owner was recorded (ISO); null for records written before the ledger existed */
  readonly learnedAt: string | null
}

/** the ownership ledger: who owns which order, for the data team after a rollback (DESIGN.md §11) */
export interface OwnerLedger {
  /** the record of one order in one rollout, or undefined; throws when the store cannot answer */
  ownerRecord (rollout: string, orderId: string): Promise<OwnerRecord | undefined>
  /** every record (of one backend, one rollout when given), a batch at a time: memory stays bounded */
  owners (filter: { backend?: BackendName, rollout?: string }): AsyncIterable<OwnerRecord[]>
}

/** one hash of counters to add to: field -> increment; the key lives ttlMs from now */
export interface CounterWrite { readonly key: string, readonly incr: Readonly<Record<string, number>>, readonly ttlMs: number }

/** counters shared by every replica (the guard's fleet scope): never called on the request path */
export interface FleetCounters {
  /** add every write and read the given keys back, in one pipelined round trip; null when the store cannot answer */
  addAndRead (writes: readonly CounterWrite[], reads: readonly string[]): Promise<Record<string, Record<string, string>> | null>
}

/** where the state lives: a local file (one replica) or Redis (many) */
export interface StateStore extends AffinityStore, OwnerLedger {
  readonly kind: 'file' | 'redis'
  /** shared counters, where the store has them (Redis); without them the guard judges its own replica */
  readonly counters?: FleetCounters
  /** the stored doc, or null when there is none yet (or the store cannot be read: then the local copy) */
  load (): Promise<StateDoc | null>
  /**
   * apply op to the stored doc atomically and publish it; null when it could not reach the store.
   * `seed` is this replica's last known doc: used when the store has lost its copy (a Redis
   * restarted without persistence), so that the state is not reset to the YAML
   */
  commit (op: Op, now: number, seed: StateDoc | null): Promise<{ doc: StateDoc, audit: AuditEntry[] } | null>
  /** newest first */
  audit (limit: number): Promise<AuditEntry[]>
  /** called with a newer doc changed elsewhere (another replica) */
  onRemoteChange (cb: (doc: StateDoc) => void): void
  /** called when the store comes back after being down */
  onReconnect (cb: () => void): void
  up (): boolean
  /** hold (or renew) a named lease for ttlMs; true when `holder` has it (the plan's leader) */
  lease (name: string, holder: string, ttlMs: number): Promise<boolean>
  close (): Promise<void>
}
