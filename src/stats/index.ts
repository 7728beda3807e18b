export { createStats, type Stats, type RatioTotals } from './sampler.js'
export { StatsRing, SLOT_MS, DEFAULT_CAPACITY, parseWindow, sampleRatio, quantileMs, type Snapshot, type StatsView, type SampleRatio } from './ring.js'
