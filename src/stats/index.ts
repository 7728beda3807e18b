export { createStats, type Stats, type StatsOptions, type RatioTotals } from './sampler.js'
export { FleetStats, slotKey, toFields, fromFields, MAX_PENDING_SLOTS, FLEET_READ_TIMEOUT_MS, type FleetSource } from './fleet.js'
export { StatsRing, SLOT_MS, DEFAULT_CAPACITY, parseWindow, sampleRatio, quantileMs, type Snapshot, type Delta, diff, type StatsView, type SampleRatio } from './ring.js'
