// the request path records on plain numbers (Tally, Timing) and prom-client hears them at scrape
// time: what a scrape shows must be what prom-client itself would have shown, value for value
import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { createMetrics, LATENCY_BUCKETS } from '../../src/metrics/index.js'

/** the lines of one metric family in the text format, without HELP/TYPE */
function lines (text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(name + '_') || l.startsWith(name + '{'))
}

t.test('request counters and the latency histogram read as prom-client would record them', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  const ref = new Registry()
  const requests = new Counter({ name: 'dualtrack_requests_total', help: 'x', labelNames: ['route', 'backend', 'method', 'code'], registers: [ref] })
  const duration = new Histogram({ name: 'dualtrack_request_duration_seconds', help: 'x', labelNames: ['route', 'backend'], buckets: LATENCY_BUCKETS, registers: [ref] })
  const route = m.route('api')
  // values on bucket bounds, between them and past the last one (+Inf only)
  const seconds = [0.001, 0.005, 0.0051, 0.3, 1.5, 2, 9.99, 10, 12, 0.05, 0.05]
  const statuses = [200, 200, 404, 200, 503, 200, 200, 201, 200, 200, 404]
  for (let i = 0; i < seconds.length; i++) {
    const backend = i % 3 === 0 ? 'new' : 'legacy'
    m.request(route, backend, i % 4 === 0 ? 'POST' : 'GET', statuses[i] as number, seconds[i] as number, undefined)
    requests.labels('api', backend, i % 4 === 0 ? 'POST' : 'GET', String(statuses[i])).inc()
    duration.labels('api', backend).observe(seconds[i] as number)
  }
  const sort = (a: string[]) => a.slice().sort()
  const got = await m.text()
  const want = await ref.metrics()
  t.same(sort(lines(got, 'dualtrack_requests_total')), sort(lines(want, 'dualtrack_requests_total')))
  t.same(sort(lines(got, 'dualtrack_request_duration_seconds')), sort(lines(want, 'dualtrack_request_duration_seconds')))

  // a second batch after a scrape adds to what prom-client already holds (nothing counted twice)
  m.request(route, 'new', 'GET', 200, 0.02, undefined)
  requests.labels('api', 'new', 'GET', '200').inc()
  duration.labels('api', 'new').observe(0.02)
  const got2 = await m.text()
  const want2 = await ref.metrics()
  t.same(sort(lines(got2, 'dualtrack_requests_total')), sort(lines(want2, 'dualtrack_requests_total')))
  t.same(sort(lines(got2, 'dualtrack_request_duration_seconds')), sort(lines(want2, 'dualtrack_request_duration_seconds')))
  t.match(got2, /dualtrack_request_duration_seconds_count\{route="api",backend="new"\} 5\n/)
})

t.test('a series appears on its first event, not when it is prepared', async (t) => {
  const m = createMetrics({ defaultMetrics: false })
  const route = m.route('quiet')
  const rollout = m.rollout('checkout')
  let text = await m.text()
  t.notMatch(text, /dualtrack_request_duration_seconds_count\{route="quiet"/)
  t.notMatch(text, /dualtrack_routing_decisions_total\{rollout="checkout"/)
  t.match(text, /dualtrack_upstream_errors_total\{route="quiet",backend="legacy",kind="timeout"\} 0/, 'error series start at 0')
  m.request(route, 'legacy', 'GET', 502, 0.1, 'timeout')
  m.decision(rollout, { backend: 'legacy', reason: 'percent', threshold: 5000 })
  text = await m.text()
  t.match(text, /dualtrack_upstream_errors_total\{route="quiet",backend="legacy",kind="timeout"\} 1/)
  t.match(text, /dualtrack_routing_decisions_total\{rollout="checkout",backend="legacy",reason="percent"\} 1/)
  t.match(text, /dualtrack_sample_ratio_total\{rollout="checkout",backend="legacy"\} 1/)
  t.match(text, /dualtrack_request_duration_seconds_bucket\{le="0.1",route="quiet",backend="legacy"\} 1/)
})
