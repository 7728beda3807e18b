// a few counters from a redis-server, over one short RESP connection (no client library): shows
// whether a redis mode really talks to redis, and how many of its requests become redis commands
import { connect } from 'node:net'

/** `INFO <section>` as a flat object of numbers (and strings) */
export function redisInfo (port, section = 'all', timeoutMs = 2_000) {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port })
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis INFO timed out after ${timeoutMs} ms`)) }, timeoutMs)
    sock.once('error', (err) => { clearTimeout(timer); reject(err) })
    sock.on('connect', () => sock.write(`INFO ${section}\r\n`))
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      // a bulk string: $<len>\r\n<payload>\r\n
      const nl = buf.indexOf('\r\n')
      if (nl === -1) return
      if (buf[0] !== 0x24) { clearTimeout(timer); sock.destroy(); reject(new Error(`redis answered ${buf.toString('utf8', 0, nl)}`)); return }
      const len = Number(buf.toString('utf8', 1, nl))
      if (buf.length < nl + 2 + len) return
      clearTimeout(timer)
      sock.end()
      const out = {}
      for (const line of buf.toString('utf8', nl + 2, nl + 2 + len).split('\r\n')) {
        const i = line.indexOf(':')
        if (i <= 0 || line.startsWith('#')) continue
        const k = line.slice(0, i)
        const v = line.slice(i + 1)
        // cmdstat_get:calls=1,usec=2,... -> cmdstat_get.calls
        if (k.startsWith('cmdstat_')) {
          for (const kv of v.split(',')) {
            const [a, b] = kv.split('=')
            out[`${k.slice(8)}.${a}`] = Number(b)
          }
        } else {
          out[k] = Number.isFinite(Number(v)) && v !== '' ? Number(v) : v
        }
      }
      resolve(out)
    })
  })
}

/** the counters the bench keeps: commands by name (calls), total commands, keyspace hits/misses */
export async function redisCounters (port) {
  const info = await redisInfo(port, 'all')
  const out = {
    total_commands_processed: info.total_commands_processed,
    keyspace_hits: info.keyspace_hits,
    keyspace_misses: info.keyspace_misses
  }
  for (const [k, v] of Object.entries(info)) if (k.endsWith('.calls') && k !== 'info.calls') out[k.slice(0, -6)] = v
  return out
}
