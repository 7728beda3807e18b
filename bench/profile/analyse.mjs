// where a .cpuprofile (the first in the directory given) spent its busy samples: self time by
// package or dualtrack folder, inclusive time of a few packages, the top functions.
// node bench/profile/analyse.mjs DIR [TOP]
import { readFileSync, readdirSync } from 'node:fs'
const dir = process.argv[2]
const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'))
const p = JSON.parse(readFileSync(`${dir}/${f}`))
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const counts = new Map()
for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1)
const dt = (p.endTime - p.startTime) / p.samples.length
function cat (cf) {
  const u = cf.url
  if (!u) return cf.functionName.startsWith('(') ? cf.functionName : `native ${cf.functionName}`
  let m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(u)
  if (m) return m[1]
  if (u.includes('/dist/')) return 'dualtrack'
  if (u.startsWith('node:')) return 'node:' + u.slice(5).split('/')[0].replace(/^internal.*/, 'internal')
  return u
}
const self = new Map(); const fn = new Map(); let total = 0; let idle = 0
for (const [id, c] of counts) {
  const n = byId.get(id); const k = cat(n.callFrame)
  if (n.callFrame.functionName === '(idle)') { idle += c; continue }
  total += c
  self.set(k, (self.get(k) ?? 0) + c)
  const fk = `${k} ${n.callFrame.functionName} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`
  fn.set(fk, (fn.get(fk) ?? 0) + c)
}
// inclusive per category: a sample counts for a category if any frame on its stack is in it
const incl = new Map()
for (const [id, c] of counts) {
  if (byId.get(id).callFrame.functionName === '(idle)') continue
  const seen = new Set(); let x = id
  while (x !== undefined) { const n = byId.get(x); seen.add(cat(n.callFrame)); if (/dist\/state\//.test(n.callFrame.url)) seen.add('dist/state (incl)'); x = parent.get(x) }
  for (const k of seen) incl.set(k, (incl.get(k) ?? 0) + c)
}
console.log(`${dir}: ${p.samples.length} samples, ${dt.toFixed(0)} µs each, busy ${total}, idle ${idle}`)
const pct = (c) => (100 * c / total).toFixed(1).padStart(5)
console.log('self by category:'); for (const [k, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 22)) console.log(`${pct(c)}%  ${k}`)
console.log('inclusive:'); for (const k of ['ioredis', 'dualtrack', 'dist/state (incl)', 'undici', 'fastify', 'pino', '(garbage collector)', 'redis-parser', 'cluster-key-slot', 'standard-as-callback']) console.log(`${pct(incl.get(k) ?? 0)}%  ${k}`)
console.log('top self functions:'); for (const [k, c] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, +(process.argv[3] ?? 30))) console.log(`${pct(c)}%  ${k}`)
