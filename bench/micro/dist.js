// the micro-benchmarks measure the BUILT gateway (npm run build → dist/); BENCH_DIST points elsewhere
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT_DIR } from '../lib/settings.js'

export const DIST = resolve(process.env.BENCH_DIST ?? join(ROOT_DIR, 'dist'))

/** import dist/<file>, or print why it cannot and exit 2 */
export async function importDist (file, names) {
  const path = join(DIST, file)
  if (!existsSync(path)) {
    console.log(`${path} is missing: build the gateway first (npm run build); nothing was measured`)
    process.exit(2)
  }
  const mod = await import(pathToFileURL(path).href)
  const missing = names.filter((n) => typeof mod[n] !== 'function')
  if (missing.length) {
    console.log(`${path} does not export ${missing.join(', ')} (yet); nothing was measured`)
    process.exit(2)
  }
  return mod
}
