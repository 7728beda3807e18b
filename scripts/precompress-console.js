// `npm run build`, after tsc: the console's files (its own and the vendored Preact+htm and uPlot)
// compressed once with brotli and gzip at their highest levels, into dist/console-assets/ named by
// their source's hash. The admin listener then sends the stored bytes: no compression CPU per
// request nor at start, and the best ratio (brotli at quality 11 is too slow to run per request)
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { consoleFiles, compressAsset, precompressedName, PRECOMPRESSED_DIR } from '../dist/console/index.js'

rmSync(PRECOMPRESSED_DIR, { recursive: true, force: true })
mkdirSync(PRECOMPRESSED_DIR, { recursive: true })
let raw = 0
let br = 0
let gz = 0
for (const [, file] of consoleFiles()) {
  const body = readFileSync(file)
  const z = compressAsset(body)
  writeFileSync(join(PRECOMPRESSED_DIR, precompressedName(body, 'br')), z.br)
  writeFileSync(join(PRECOMPRESSED_DIR, precompressedName(body, 'gzip')), z.gzip)
  raw += body.length
  br += Math.min(z.br.length, body.length)
  gz += Math.min(z.gzip.length, body.length)
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`
process.stdout.write(`console: ${kb(raw)} as is, ${kb(gz)} gzip, ${kb(br)} brotli (${PRECOMPRESSED_DIR})\n`)
