// runs a dualtrack CLI (PROFILE_CLI, e.g. $PWD/bin/dualtrack.js) with a CPU profile of its main
// thread taken through node:inspector (`--cpu-prof` is refused in NODE_OPTIONS): PROFILE_FOR_MS
// (7000) from PROFILE_AFTER_MS (6000) after start, sampled every 500 µs, written to
// PROFILE_DIR/prof-PID.cpuprofile. Given to the bench as BENCH_BASELINE_CLI, it profiles the
// dualtrack-baseline-* candidates (bench/README.md, "Round four")
import { Session } from 'node:inspector'
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const cli = process.env.PROFILE_CLI
if (!cli) throw new Error('PROFILE_CLI: the path of the dualtrack CLI to profile (bin/dualtrack.js)')
const dir = process.env.PROFILE_DIR ?? process.cwd()
const after = Number(process.env.PROFILE_AFTER_MS ?? 6000)
const span = Number(process.env.PROFILE_FOR_MS ?? 7000)
const s = new Session()
s.connect()
setTimeout(() => {
  s.post('Profiler.enable', () => s.post('Profiler.setSamplingInterval', { interval: 500 }, () => s.post('Profiler.start', () => {
    setTimeout(() => {
      s.post('Profiler.stop', (err, r) => {
        if (!err) writeFileSync(`${dir}/prof-${process.pid}.cpuprofile`, JSON.stringify(r.profile))
      })
    }, span).unref()
  })))
}, after).unref()
await import(pathToFileURL(cli).href)
