// the state folder's one door: what other folders use, nothing else (ARCHITECTURE.md)
export { StateManager } from './manager.js'
export { syncYaml, setRollout, rollback, resume, planStart, planAdvance, planWait, planPause, planResume, opFromDesc, type RolloutPatch } from './ops.js'
export type { StateDoc, AuditEntry, Op, OpDesc, StateStore, FleetCounters, CounterWrite } from './types.js'
export { createStateStore, createFileStore, yamlViews } from './create.js'
export { Affinity, type CompiledAffinity } from './affinity.js'
export type { OwnerLedger, OwnerRecord, StoredOwner } from './types.js'
