export { Guardian, DEFAULT_TICK_MS } from './guardian.js'
export { SlidingWindow, type WindowStats } from './window.js'
export { judge, type Verdict } from './judge.js'
