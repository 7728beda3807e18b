#!/usr/bin/env node
// the built CLI; `npm run build` (run by `npm ci` through `prepare`) makes dist/
import { main } from '../dist/cli/index.js'

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code
}, (err) => {
  // one line: a stack trace only when asked for
  process.stderr.write(`dualtrack: ${process.env.DUALTRACK_DEBUG && err && err.stack ? err.stack : (err && err.message) || err}\n`)
  process.exitCode = 1
})
