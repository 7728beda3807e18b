// every candidate, in the order a round runs them (each round rotates the order)
import { direct, nodeBaseline } from './node-baseline.js'
import { nginxCandidate } from './nginx.js'
import { dualtrackCandidate } from './dualtrack.js'

export const CANDIDATES = [
  direct,
  nginxCandidate('nginx-split', { mirror: false }),
  nginxCandidate('nginx-mirror', { mirror: true }),
  nodeBaseline('fastify-http-proxy', 'fastify-http-proxy.js'),
  nodeBaseline('undici-minimal', 'undici-minimal.js'),
  dualtrackCandidate('dualtrack'),
  dualtrackCandidate('dualtrack-baseline'),
  dualtrackCandidate('dualtrack-shadow'),
  dualtrackCandidate('dualtrack-baseline-shadow'),
  dualtrackCandidate('dualtrack-redis'),
  dualtrackCandidate('dualtrack-affinity'),
  dualtrackCandidate('dualtrack-no-metrics'),
  dualtrackCandidate('dualtrack-heap-default'),
  dualtrackCandidate('dualtrack-redis-affinity'),
  dualtrackCandidate('dualtrack-baseline-redis'),
  dualtrackCandidate('dualtrack-baseline-redis-affinity'),
  dualtrackCandidate('dualtrack-2workers')
]
