// the scenarios in the order they run
import get1k from './get-1k.js'
import post600b from './post-600b.js'
import post64k from './post-64k.js'

export const SCENARIOS = [get1k, post600b, post64k]
