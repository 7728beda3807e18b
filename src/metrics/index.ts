export { AFFINITY_RESULTS, createMetrics, LATENCY_BUCKETS, SAMPLE_WINDOW_S, type AffinityOp, type AffinityResult, type Metrics, type RouteSeries, type RolloutSeries } from './metrics.js'
