// the most memory one gateway process can hold, from its config (README: Sizing). The Kubernetes
// manifest's limit is checked against it (test/deploy/manifests.test.ts), so a config edit that
// outgrows the pod fails a test instead of an OOM kill in production
import type { Config } from './load.js'

const MiB = 1024 * 1024
/** V8's young generation on 64-bit (3 × 16 MiB semi-spaces), on top of --max-old-space-size */
export const V8_YOUNG_GENERATION_MIB = 48
/** what an idle gateway holds outside the V8 heap (code, libraries, sockets): 57 MiB measured, rounded up */
export const NATIVE_BASELINE_MIB = 64
/** one shadow copy in flight holds three bodies: the request's, the primary answer, the copy's answer */
export const SHADOW_BODIES_PER_COPY = 3
/** an upstream exchange holds at most two: the request body it buffered and the answer it captures */
export const BODIES_PER_EXCHANGE = 2

/** MiB per term, and their sum: the worst case of one process */
export interface MemoryBudget {
  /** the V8 heap at its ceiling: old space plus young generation */
  readonly heap: number
  readonly native: number
  /** every shadowed route's copies in flight, each at its maxBodyBytes */
  readonly shadow: number
  /** requests being forwarded (at most the backends' connections at once), each with its captured bodies */
  readonly exchanges: number
  readonly total: number
}

/** the worst case of one process of this config under `--max-old-space-size=oldSpaceMiB` */
export function memoryBudget (config: Config, oldSpaceMiB: number): MemoryBudget {
  let shadowBytes = 0
  // the largest body a request may have buffered or captured on its way: shadow or affinity
  let capture = 0
  for (const r of config.routes) {
    if (r.shadow !== undefined) {
      shadowBytes += r.shadow.maxInFlight * SHADOW_BODIES_PER_COPY * r.shadow.maxBodyBytes
      capture = Math.max(capture, r.shadow.maxBodyBytes)
    }
    const a = config.rollouts[r.rollout]?.affinity
    if (a !== undefined) capture = Math.max(capture, a.maxBodyBytes)
  }
  const connections = config.backends.legacy.connections + config.backends.new.connections
  const heap = oldSpaceMiB + V8_YOUNG_GENERATION_MIB
  const shadow = shadowBytes / MiB
  const exchanges = connections * BODIES_PER_EXCHANGE * capture / MiB
  return { heap, native: NATIVE_BASELINE_MIB, shadow, exchanges, total: heap + NATIVE_BASELINE_MIB + shadow + exchanges }
}
