// for programs that need their port in a config file (nginx, dualtrack): bind port 0, read the
// port the kernel gave, release it; the caller retries if someone else takes it in between
import { createServer } from 'node:net'

export function freePort (host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, host, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** a random port above 20000 (redis cannot bind port 0); free at the time of asking */
export async function randomHighPort (host = '127.0.0.1') {
  for (let i = 0; i < 20; i++) {
    const port = 20_001 + Math.floor(Math.random() * 40_000)
    const ok = await new Promise((resolve) => {
      const s = createServer()
      s.unref()
      s.once('error', () => resolve(false))
      s.listen(port, host, () => s.close(() => resolve(true)))
    })
    if (ok) return port
  }
  throw new Error('no free port above 20000 after 20 tries')
}
