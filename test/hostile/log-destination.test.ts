// the log destination gives up on a descriptor that is gone, never retrying it (before: sonic-boom's
// flushSync retried every error but EAGAIN forever, so a gateway whose terminal hung up looped on
// write(1) = EIO every 100 ms at exit and never exited). /dev/full fails every write (ENOSPC), like a
// hung-up terminal fails them with EIO
import t from 'tap'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { LogDestination } from '../../src/log-destination.js'
import { tempDir } from '../helpers/gateway.js'
import { waitFor } from '../helpers/wait.js'

t.test('flushSync on a descriptor that fails every write returns at once and gives up', async (t) => {
  const fd = openSync('/dev/full', 'w')
  t.teardown(() => closeSync(fd))
  const d = new LogDestination(fd, 1 << 20)
  t.teardown(() => d.end())
  d.write('a line\n')
  d.flushSync()
  t.equal(d.dead?.code, 'ENOSPC', 'gave up, naming why')
  t.equal(d.write('more\n'), true, 'later lines are dropped without an error')
  d.flushSync()
})

t.test('an async write that fails gives up too; flush callbacks still return', async (t) => {
  const fd = openSync('/dev/full', 'w')
  t.teardown(() => closeSync(fd))
  const d = new LogDestination(fd, 8)
  t.teardown(() => d.end())
  d.write('longer than eight bytes\n')
  await waitFor(() => d.dead !== null, { what: 'the destination to give up' })
  await new Promise<void>((resolve) => d.flush(() => resolve()))
  t.equal(d.dead?.code, 'ENOSPC')
})

t.test('on a working descriptor: lines are buffered, then all written, in order', async (t) => {
  const file = join(tempDir(), 'log')
  const fd = openSync(file, 'w')
  t.teardown(() => closeSync(fd))
  const d = new LogDestination(fd, 64, 60_000)
  t.teardown(() => d.end())
  for (let i = 0; i < 100; i++) d.write(`line ${i}\n`)
  await new Promise<void>((resolve) => d.flush(() => resolve()))
  d.write('last\n')
  d.flushSync()
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  t.equal(lines.length, 101)
  t.equal(lines[0], 'line 0')
  t.equal(lines[99], 'line 99')
  t.equal(lines[100], 'last')
  t.equal(d.dead, null)
})
