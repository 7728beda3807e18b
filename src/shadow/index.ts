export { Shadower, MAX_SAMPLES_PER_ROUTE, MAX_FIELD_LABELS, type MismatchSample, type ShadowRequest } from './shadow.js'
export { compileComparer, type Answer, type Comparer, type CompareResult, type CompareOptions } from './compare.js'
export { compileRedactor, redactText, type Redactor } from './redact.js'
export { createNoiseTracker, type NoiseTracker } from './noise.js'
