export { createMetrics, LATENCY_BUCKETS, SAMPLE_WINDOW_S, type Metrics, type RouteSeries, type RolloutSeries } from './metrics.js'
